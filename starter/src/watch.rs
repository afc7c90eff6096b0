//! Following a request: the acknowledgement of an update, and `status --watch` (a spinner
//! per step on a terminal; plain lines, each naming the request, when stdout is a pipe).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;
use tollgate_client::{ClientError, requests};
use tollgate_proto::{Ack, Progress, Stage};

/// How long a settled request's running steps are waited for before the watch ends anyway.
const SETTLE_WAIT: Duration = Duration::from_secs(5);
/// How long a watch waits for a worker that stopped answering before it gives up.
const WORKER_WAIT: Duration = Duration::from_secs(120);

pub(crate) fn print_ack(id: &str, ack: &Ack, json_out: bool) {
    if json_out {
        let stage = Stage::try_from(ack.stage).unwrap_or(Stage::Unspecified);
        println!(
            "{}",
            json!({
                "request_id": id,
                "message": ack.message,
                "stage": stage.label(),
                "approvals": ack.approvals,
                "required_approvals": ack.required_approvals,
                "extension_asked": ack.extension_asked,
                "expires_at": (tollgate_proto::ms(&ack.expires_at) > 0).then(|| tollgate_workflows::fmt_time_ms(tollgate_proto::ms(&ack.expires_at))),
            })
        );
    } else {
        println!("{}", ack.message);
    }
}

/// Polls progress, drawing a spinner per step, until the request settles (or ends, with
/// `follow`) and the steps it started have finished. Progress goes to stdout, so a pipe
/// reads it; plain lines replace the spinners when stdout is not a terminal.
pub(crate) async fn watch_progress(
    client: &temporalio_client::Client,
    id: &str,
    follow: bool,
    quiet: bool,
) -> Result<Progress, ClientError> {
    let fancy = !quiet && std::io::stdout().is_terminal();
    let multi = MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stdout());
    let running =
        ProgressStyle::with_template("{spinner:.cyan} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let done = ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let mut bars: Vec<ProgressBar> = Vec::new();
    let stage_bar = multi.add(ProgressBar::new_spinner());
    stage_bar.set_style(running.clone());
    stage_bar.enable_steady_tick(Duration::from_millis(120));
    if !fancy {
        stage_bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut printed: Option<usize> = None;
    let mut last_stage = Stage::Unspecified;
    let mut settled_since: Option<tokio::time::Instant> = None;
    let mut unanswered_since: Option<tokio::time::Instant> = None;
    loop {
        // A worker that is restarting does not answer for a while: a watch waits for it (a
        // one-shot `status` says so at once).
        let p = match requests::progress(client, id).await {
            Ok(p) => {
                unanswered_since = None;
                p
            }
            Err(ClientError::Failed(why)) if unanswered_since.is_none_or(|t| t.elapsed() < WORKER_WAIT) => {
                if unanswered_since.is_none() && !quiet {
                    eprintln!("tollgate: {why} (still watching)");
                }
                unanswered_since.get_or_insert_with(tokio::time::Instant::now);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        // Plain output shows only what happens while watching (the status follows anyway).
        let printed = printed
            .get_or_insert_with(|| p.timeline.iter().take_while(|t| tollgate_proto::ms(&t.ended_at) > 0).count());
        let stage = p.stage_enum();
        for (i, t) in p.timeline.iter().enumerate() {
            let finished = tollgate_proto::ms(&t.ended_at) > 0;
            let line = if finished {
                let secs = (tollgate_proto::ms(&t.ended_at) - tollgate_proto::ms(&t.started_at)) as f64 / 1000.0;
                let mark = if t.outcome.starts_with("failed") { "✘" } else { "✔" };
                let attempts = if t.attempts > 1 { format!(", {} attempts", t.attempts) } else { String::new() };
                format!(
                    "{mark} {} ({secs:.1}s{attempts}) {}",
                    t.step,
                    if t.outcome == "ok" { "" } else { t.outcome.as_str() }
                )
            } else {
                format!("{} …", t.step)
            };
            if fancy {
                if i >= bars.len() {
                    let bar = multi.insert_before(&stage_bar, ProgressBar::new_spinner());
                    bar.set_style(running.clone());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bars.push(bar);
                }
                if finished && !bars[i].is_finished() {
                    bars[i].set_style(done.clone());
                    bars[i].finish_with_message(line);
                } else if !finished {
                    bars[i].set_message(line);
                }
            } else if !quiet && finished && i >= *printed {
                println!("  {line}");
                *printed = i + 1;
            }
        }
        if stage != last_stage {
            if !fancy && !quiet {
                println!("{id}: {}", stage.label());
            }
            last_stage = stage;
        }
        stage_bar.set_message(format!("{id}: {}", stage.label()));
        // A terminated workflow never reaches a final stage: stop watching it.
        let settled = if follow { stage.is_terminal() } else { stage.is_settled() }
            || requests::stopped_without_ending(client, id, &p).await.is_some();
        // A stage is set before the step that announces it (the notice) has run: give the
        // steps already started a moment to finish, so the watch does not end on a spinner.
        let steps_done = p.timeline.iter().all(|t| tollgate_proto::ms(&t.ended_at) > 0);
        if settled {
            let since = *settled_since.get_or_insert_with(tokio::time::Instant::now);
            if steps_done || since.elapsed() > SETTLE_WAIT {
                stage_bar.finish_and_clear();
                return Ok(p);
            }
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}
