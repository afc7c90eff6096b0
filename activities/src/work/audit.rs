//! An audit's steps: discover what exists (and which request manages it) and analyse it with
//! the policy pack, as `tollgate policy check` audits a state.

use serde_json::{Value, json};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::words::FixKind;
use tollgate_proto::{AnalyseInput, AuditAnalysis, AuditTargetKind, DiscoverInput, DiscoveredResource, Discovery};
use tollgate_workflows::failure::FailureType;

use crate::{TollgateActivities, classified, failed};

/// Whether `target` names the resource: its id, its name (a bucket's), or its ARN.
fn names(resource: &DiscoveredResource, target: &str) -> bool {
    if resource.resource_id == target {
        return true;
    }
    let attributes: Value = serde_json::from_str(&resource.attributes_json).unwrap_or(Value::Null);
    ["bucket", "arn", "name"].iter().any(|key| attributes[key].as_str() == Some(target))
}

/// What an audit could look at instead, for the error of one that found nothing: a few
/// resource ids and the requests Temporal knows that hold resources.
fn what_exists(found: &[DiscoveredResource], requests: &[String]) -> String {
    const SHOWN: usize = 8;
    if found.is_empty() {
        return "it holds no resources at all".into();
    }
    let mut ids: Vec<&str> = found.iter().map(|r| r.resource_id.as_str()).filter(|id| !id.is_empty()).collect();
    ids.sort();
    ids.dedup();
    let more = if ids.len() > SHOWN { format!(" and {} more", ids.len() - SHOWN) } else { String::new() };
    let shown: Vec<&str> = ids.into_iter().take(SHOWN).collect();
    let held = if requests.is_empty() { "none".to_string() } else { requests.join(", ") };
    format!("resources there: {}{more}; requests holding resources: {held}", shown.join(", "))
}

impl TollgateActivities {
    pub(crate) async fn discover_work(
        &self,
        ctx: &ActivityContext,
        input: DiscoverInput,
    ) -> Result<Discovery, ActivityError> {
        let target = input.target.trim().to_string();
        let states = self.engine.states().await.map_err(failed)?;
        let mut found = Vec::new();
        for (request_id, state) in &states {
            found.extend(tollgate_engine::discovered(request_id, state));
        }
        let kind = input.target_kind();
        // Which requests exist in Temporal (and which are ACTIVE): a resource whose request
        // Temporal does not know is not managed by Tollgate.
        let mut requests: Vec<String> = found.iter().map(|r| r.request_id.clone()).collect();
        requests.sort();
        requests.dedup();
        let mut known = Vec::new();
        let mut active = Vec::new();
        for id in requests {
            if let Some(stage) = self.request_stage(&id).await? {
                if stage == "ACTIVE" {
                    active.push(id.clone());
                }
                known.push(id);
            }
        }
        for r in &mut found {
            if !known.contains(&r.request_id) {
                r.request_id.clear();
            }
        }
        let exists = what_exists(&found, &known);
        let resources: Vec<DiscoveredResource> = match kind {
            AuditTargetKind::Request => found.into_iter().filter(|r| r.request_id == target).collect(),
            AuditTargetKind::AllActive => found.into_iter().filter(|r| active.contains(&r.request_id)).collect(),
            _ => found.into_iter().filter(|r| names(r, &target)).collect(),
        };
        if resources.is_empty() && kind != AuditTargetKind::AllActive {
            let what = match kind {
                AuditTargetKind::Request => format!("request {target} holds no resources"),
                _ => format!("no resource has the id, name or ARN '{target}'"),
            };
            return Err(classified(
                FailureType::InvalidRequest,
                false,
                format!("{what} in the {} engine; {exists}", self.engine.name()),
            ));
        }
        Ok(Discovery { resources, engine: self.engine.name().into(), attempt: ctx.info().attempt })
    }

    /// The request's stage in Temporal; None when Temporal has no such request.
    async fn request_stage(&self, id: &str) -> Result<Option<String>, ActivityError> {
        use temporalio_client::errors::WorkflowInteractionError;
        let Some(client) = &self.temporal else {
            return Err(classified(FailureType::Internal, false, "this worker has no Temporal client for audits"));
        };
        let handle = client.get_workflow_handle::<tollgate_workflows::ProvisionWorkflow>(id);
        match handle.describe(temporalio_client::WorkflowDescribeOptions::default()).await {
            Ok(d) => {
                Ok(Some(d.search_attributes().get(&tollgate_workflows::search_attributes::STAGE).unwrap_or_default()))
            }
            Err(WorkflowInteractionError::NotFound(_)) => Ok(None),
            Err(e) => Err(classified(FailureType::TemporalUnavailable, true, format!("describing {id}: {e}"))),
        }
    }

    pub(crate) async fn analyse_work(
        &self,
        ctx: &ActivityContext,
        input: AnalyseInput,
    ) -> Result<AuditAnalysis, ActivityError> {
        // What exists, in the plan shape the rules read: each resource "created" with its
        // current attributes, under its request (or "unmanaged") so addresses stay apart.
        let changes: Vec<Value> = input
            .resources
            .iter()
            .map(|r| {
                let after: Value = serde_json::from_str(&r.attributes_json).unwrap_or(json!({}));
                let owner = if r.request_id.is_empty() { "unmanaged" } else { r.request_id.as_str() };
                let name = r.address.rsplit('.').next().unwrap_or_default();
                json!({
                    "address": format!("{owner}/{}", r.address),
                    "mode": "managed",
                    "type": r.resource_type,
                    "name": name,
                    "change": {"actions": ["create"], "before": null, "after": after, "after_unknown": {}},
                })
            })
            .collect();
        let plan = json!({
            "format_version": "1.0",
            "resource_changes": changes,
            "configuration": {"root_module": {"resources": []}},
        });
        let findings = self.policies.evaluate(&plan).map_err(failed)?;
        // The LLM reviewer's opinion, when one is configured: it informs, it never fails the step.
        let opinion = match self.ai.as_ref().and_then(|ai| ai.llm.as_ref().map(|llm| (ai, llm))) {
            Some((ai, llm)) => {
                let within = ai.config.timeout.mul_f64(0.75);
                // Attributes the sandbox and Terraform mark sensitive never leave the worker.
                let resources: Vec<_> = input.resources.iter().map(without_sensitive).collect();
                let asked = tollgate_ai::review::llm::audit_opinion(llm, &ai.prompt, &resources, &findings);
                Some(tokio::time::timeout(within, asked).await.unwrap_or_else(|_| tollgate_proto::AuditOpinion {
                    by: tollgate_proto::words::llm_named(&llm.config.model),
                    missing: format!("no opinion within {}", humantime::format_duration(within)),
                    ..Default::default()
                }))
            }
            None => None,
        };
        Ok(AuditAnalysis {
            findings,
            pack: self.policies.pack().to_string(),
            rules: self.policies.rules().len() as u32,
            attempt: ctx.info().attempt,
            opinion,
        })
    }
}

/// The owner part and the address part of an audit finding's address.
fn split_address(address: &str) -> (&str, &str) {
    address.split_once('/').unwrap_or(("unmanaged", address))
}

/// An operator's command for a finding on a resource Tollgate does not manage; None when no
/// command is known for the rule.
fn command_for(rule: &str, resource: &DiscoveredResource) -> Option<String> {
    let attributes: Value = serde_json::from_str(&resource.attributes_json).unwrap_or(Value::Null);
    let bucket = attributes["bucket"].as_str().unwrap_or(&resource.resource_id);
    match (rule, resource.resource_type.as_str()) {
        ("s3-public-access", "aws_s3_bucket") => Some(format!(
            "aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration \
             BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"
        )),
        ("encryption-at-rest", "aws_s3_bucket") => Some(format!(
            "aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration \
             '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"AES256\"}}}}]}}'"
        )),
        ("open-ingress", "aws_security_group") => {
            let open: Vec<String> = attributes["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["cidr_blocks"].as_array().is_some_and(|c| c.iter().any(|c| c == "0.0.0.0/0")))
                .map(|i| {
                    format!(
                        "aws ec2 revoke-security-group-ingress --group-id {} --protocol {} --port {} --cidr 0.0.0.0/0",
                        resource.resource_id,
                        i["protocol"].as_str().unwrap_or("tcp"),
                        i["from_port"]
                    )
                })
                .collect();
            (!open.is_empty()).then(|| open.join(" && "))
        }
        _ => None,
    }
}

/// The module that would bring an unmanaged resource under Tollgate's management: an import
/// block and the resource, to complete and request as a module source.
fn module_for(resource: &DiscoveredResource, fix: &str) -> String {
    let name = resource.address.rsplit('.').next().unwrap_or("this");
    format!(
        "import {{\n  to = {}\n  id = \"{}\"\n}}\n\nresource \"{}\" \"{name}\" {{\n  # Copy its settings here, with the fix: {fix}\n  tags = var.tags\n}}\n",
        resource.address, resource.resource_id, resource.resource_type
    )
}

impl TollgateActivities {
    pub(crate) async fn remediate_work(
        &self,
        ctx: &ActivityContext,
        input: tollgate_proto::RemediateInput,
    ) -> Result<tollgate_proto::Remediation, ActivityError> {
        use tollgate_proto::AuditFix;
        let Some(client) = &self.temporal else {
            return Err(classified(FailureType::Internal, false, "this worker has no Temporal client for audits"));
        };
        // What re-applying each owning request's approved configuration would change.
        let mut replans: std::collections::BTreeMap<
            String,
            (Vec<tollgate_proto::ResourceChange>, Vec<tollgate_proto::PolicyFinding>),
        > = Default::default();
        for f in &input.findings {
            let (owner, _) = split_address(&f.address);
            if owner == "unmanaged" || replans.contains_key(owner) {
                continue;
            }
            let progress = tollgate_client::requests::progress(client, owner)
                .await
                .map_err(|e| classified(FailureType::TemporalUnavailable, true, format!("reading {owner}: {e}")))?;
            let bundle = self.load_bundle(&progress.module_digest).await?;
            let op_progress = tollgate_engine::Progress::default();
            let op = tollgate_engine::OpContext { attempt: ctx.info().attempt, progress: &op_progress };
            let plan = self.engine.plan(owner, &bundle, op).await.map_err(failed)?;
            let changes = tollgate_workflows::drift::changes(&tollgate_engine::summarize(&plan));
            replans.insert(owner.to_string(), (changes, progress.findings));
        }
        let mut fixes = Vec::new();
        for f in &input.findings {
            let (owner, address) = split_address(&f.address);
            let mut fix = AuditFix {
                rule_id: f.rule_id.clone(),
                control: f.control.clone(),
                address: f.address.clone(),
                request_id: if owner == "unmanaged" { String::new() } else { owner.to_string() },
                ..Default::default()
            };
            match replans.get(owner) {
                Some((changes, approved_findings)) => {
                    let approved_breaks = approved_findings.iter().any(|a| a.rule_id == f.rule_id);
                    if approved_breaks {
                        fix.kind = FixKind::Manual.as_str().into();
                        fix.description = format!(
                            "request {owner}'s approved configuration itself breaks {} ({}): change its module and request again",
                            f.rule_id, f.message
                        );
                    } else if changes.is_empty() {
                        fix.kind = FixKind::Manual.as_str().into();
                        fix.description = format!(
                            "request {owner}'s approved configuration would not change {address} (the policy pack may be newer than the request): change its module and request again"
                        );
                    } else {
                        fix.kind = FixKind::Reapply.as_str().into();
                        fix.changes = changes.clone();
                        fix.description = format!(
                            "re-apply request {owner}'s approved configuration through its own workflow; it undoes {}",
                            tollgate_workflows::drift::describe(changes)
                        );
                    }
                }
                None => {
                    let resource = input.resources.iter().find(|r| r.request_id.is_empty() && r.address == address);
                    match resource.and_then(|r| command_for(&f.rule_id, r).map(|c| (r, c))) {
                        Some((r, command)) => {
                            fix.kind = FixKind::Command.as_str().into();
                            fix.description =
                                format!("Tollgate does not manage {}: an operator runs the command", r.resource_id);
                            fix.module_hcl = module_for(r, &f.message);
                            fix.command = command;
                        }
                        None => {
                            fix.kind = FixKind::Manual.as_str().into();
                            fix.description = format!(
                                "Tollgate does not manage it and knows no command for {}: {}",
                                f.rule_id, f.message
                            );
                            if let Some(r) = resource {
                                fix.module_hcl = module_for(r, &f.message);
                            }
                        }
                    }
                }
            }
            fixes.push(fix);
        }
        Ok(tollgate_proto::Remediation { fixes, attempt: ctx.info().attempt })
    }

    pub(crate) async fn repair_work(
        &self,
        ctx: &ActivityContext,
        input: tollgate_proto::RepairInput,
    ) -> Result<tollgate_proto::RepairResult, ActivityError> {
        use tollgate_workflows::{Incoming, ProvisionWorkflow};
        let Some(client) = &self.temporal else {
            return Err(classified(FailureType::Internal, false, "this worker has no Temporal client for audits"));
        };
        let id = input.request_id.clone();
        let result = |outcome: String| tollgate_proto::RepairResult {
            request_id: id.clone(),
            outcome,
            attempt: ctx.info().attempt,
        };
        let done = |p: &tollgate_proto::Progress| {
            p.drift.iter().rev().find(|d| d.audit_id == input.audit_id).map(|d| d.action.clone())
        };
        let unavailable =
            |e: tollgate_client::ClientError| classified(FailureType::TemporalUnavailable, true, e.to_string());
        // A retried attempt finds the repair it asked for already done.
        let progress = tollgate_client::requests::progress(client, &id).await.map_err(unavailable)?;
        if let Some(outcome) = done(&progress) {
            return Ok(result(outcome));
        }
        let command = tollgate_proto::LifecycleCommand {
            user: input.approved_by.clone(),
            comment: input.audit_id.clone(),
            ..Default::default()
        };
        match tollgate_client::requests::send_update(client, &id, ProvisionWorkflow::repair, Incoming::new(command))
            .await
        {
            Ok(_) => {}
            Err(tollgate_client::ClientError::Refusal(r)) => return Ok(result(format!("not repaired: {}", r.message))),
            Err(e) => return Err(unavailable(e)),
        }
        loop {
            ctx.record_heartbeat(format!("waiting for {id} to re-apply")).await.ok();
            let progress = tollgate_client::requests::progress(client, &id).await.map_err(unavailable)?;
            if let Some(outcome) = done(&progress) {
                return Ok(result(outcome));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

/// Where reported findings are remembered (artifact store records).
const REPORTED: &str = "audit-findings";

impl TollgateActivities {
    pub(crate) async fn new_findings_work(
        &self,
        ctx: &ActivityContext,
        input: tollgate_proto::NewFindingsInput,
    ) -> Result<tollgate_proto::NewFindingsResult, ActivityError> {
        let Some(client) = &self.temporal else {
            return Err(classified(FailureType::Internal, false, "this worker has no Temporal client for audits"));
        };
        let mut owners: std::collections::BTreeMap<String, Vec<tollgate_proto::PolicyFinding>> = Default::default();
        let mut already = 0;
        let mut requesters: std::collections::BTreeMap<String, String> = Default::default();
        for f in &input.findings {
            let (owner, _) = split_address(&f.address);
            if owner == "unmanaged" {
                continue;
            }
            let key = tollgate_artifacts::digest_of(format!("{}\n{}\n{}", f.rule_id, f.address, f.message).as_bytes());
            let key = key.trim_start_matches("sha256:").to_string();
            if self.artifacts.get_record(REPORTED, &key).await.map_err(crate::failed)?.is_some() {
                already += 1;
                continue;
            }
            let requester = match requesters.get(owner) {
                Some(r) => r.clone(),
                None => {
                    let progress = tollgate_client::requests::progress(client, owner).await.map_err(|e| {
                        classified(FailureType::TemporalUnavailable, true, format!("reading {owner}: {e}"))
                    })?;
                    let r = progress.request.map(|r| r.requester).unwrap_or_default();
                    requesters.insert(owner.to_string(), r.clone());
                    r
                }
            };
            self.artifacts.put_record(REPORTED, &key, f.address.as_bytes()).await.map_err(crate::failed)?;
            owners.entry(requester).or_default().push(f.clone());
        }
        Ok(tollgate_proto::NewFindingsResult {
            owners: owners
                .into_iter()
                .map(|(owner, findings)| tollgate_proto::OwnerFindings { owner, findings })
                .collect(),
            already_reported: already,
            attempt: ctx.info().attempt,
        })
    }
}

impl TollgateActivities {
    /// Stores the finished report (as `tollgate audit status -o json` shows it) and names the
    /// owners of the requests it looked at.
    pub(crate) async fn file_report_work(
        &self,
        ctx: &ActivityContext,
        input: tollgate_proto::FileReportInput,
    ) -> Result<tollgate_proto::FileReportResult, ActivityError> {
        let Some(client) = &self.temporal else {
            return Err(classified(FailureType::Internal, false, "this worker has no Temporal client for audits"));
        };
        let report = input.report.unwrap_or_default();
        let json = serde_json::to_vec_pretty(&tollgate_client::render::audit_json(&report)).unwrap_or_default();
        let digest =
            self.artifacts.put(tollgate_artifacts::ArtifactKind::AuditReport, &json).await.map_err(crate::failed)?;
        let requests: std::collections::BTreeSet<&str> =
            report.resources.iter().map(|r| r.request_id.as_str()).filter(|id| !id.is_empty()).collect();
        let mut owners = std::collections::BTreeSet::new();
        for id in requests {
            let progress = tollgate_client::requests::progress(client, id)
                .await
                .map_err(|e| classified(FailureType::TemporalUnavailable, true, format!("reading {id}: {e}")))?;
            if let Some(request) = progress.request {
                owners.insert(request.requester);
            }
        }
        Ok(tollgate_proto::FileReportResult {
            digest,
            owners: owners.into_iter().collect(),
            attempt: ctx.info().attempt,
        })
    }
}

/// A discovered resource without the attributes the sandbox and Terraform mark sensitive.
fn without_sensitive(r: &tollgate_proto::DiscoveredResource) -> tollgate_proto::DiscoveredResource {
    let mut attributes: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&r.attributes_json).unwrap_or_default();
    attributes.retain(|k, _| !tollgate_engine::sandbox::schema::sensitive(k));
    tollgate_proto::DiscoveredResource {
        attributes_json: serde_json::Value::Object(attributes).to_string(),
        ..r.clone()
    }
}
