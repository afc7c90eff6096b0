//! What each activity does, by step. `lib.rs` declares the activities (and the fault
//! wrapper around each); the work they do lives here, one file per stage of a request.

mod apply;
mod audit;
mod costs;
mod deliver;
mod generate;
mod headroom;
mod plan;
mod reconcile;
mod review;
