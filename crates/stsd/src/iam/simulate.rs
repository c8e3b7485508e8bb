//! The policy simulator (`SimulatePrincipalPolicy`, `SimulateCustomPolicy`) and the context-key
//! listings. The simulator evaluates with the same engine and the same policy sets as enforcement, so
//! its answers agree with what the API does for the same inputs.

use super::{Iam, no_such_user, paged, store_err};
use crate::authz::{Entry, PolicySet};
use stsd_policy::{Context, Decision, Policy, PolicyKind, SourceKind, Value};
use stsd_proto::ApiError;
use stsd_proto::iam::{
    ContextEntry, ContextKeyType, EvalDecision, EvaluationResultView, IamAction, IamOutput,
    MatchedStatementView,
};

/// The context the simulator evaluates in: only what the caller gave, as IAM's simulator does
/// (omitting `aws:MultiFactorAuthPresent` models a long-term key).
fn context_of(entries: &[ContextEntry]) -> Result<Context, ApiError> {
    let mut ctx = Context::new();
    for e in entries {
        let mut values = Vec::with_capacity(e.values.len());
        for v in &e.values {
            values.push(match e.kind {
                ContextKeyType::Ip | ContextKeyType::IpList => {
                    Value::Ip(v.trim().parse().map_err(|_| {
                        ApiError::invalid_input(format!(
                            "Invalid value {v} for context key {} of type {}",
                            e.key,
                            e.kind.as_str()
                        ))
                    })?)
                }
                ContextKeyType::Binary | ContextKeyType::BinaryList => {
                    use base64::Engine as _;
                    Value::Binary(
                        base64::engine::general_purpose::STANDARD
                            .decode(v.trim())
                            .map_err(|_| {
                                ApiError::invalid_input(format!(
                                    "Invalid value {v} for context key {} of type {}",
                                    e.key,
                                    e.kind.as_str()
                                ))
                            })?,
                    )
                }
                _ => Value::Str(v.clone()),
            });
        }
        if e.kind.is_list() {
            ctx.set_list(&e.key, values);
        } else if let Some(v) = values.into_iter().next() {
            ctx.set(&e.key, v);
        }
    }
    Ok(ctx)
}

fn input_policies(docs: &[String]) -> Result<Vec<Entry>, ApiError> {
    docs.iter()
        .enumerate()
        .map(|(i, d)| {
            let policy = Policy::parse(d, PolicyKind::Identity)
                .map_err(|e| ApiError::new(400, "MalformedPolicyDocument", e.message))?;
            Ok(Entry {
                policy,
                id: format!("PolicyInputList.{}", i + 1),
                kind: SourceKind::None,
            })
        })
        .collect()
}

fn matched_views(d: &Decision) -> Vec<MatchedStatementView> {
    let list = match d {
        Decision::Allowed(m) | Decision::ExplicitDeny(m) => m.as_slice(),
        Decision::ImplicitDeny => &[],
    };
    list.iter()
        .map(|m| MatchedStatementView {
            source_policy_id: m.id.clone(),
            source_policy_type: m.kind.as_str().to_owned(),
            start: (m.start.line, m.start.column),
            end: (m.end.line, m.end.column),
        })
        .collect()
}

impl<'a> Iam<'a> {
    /// The policies of a simulated principal (a user with its groups, or a group).
    async fn principal_policies(
        &self,
        action: &IamAction,
        source_arn: &str,
    ) -> Result<PolicySet, ApiError> {
        self.check(action, source_arn, source_arn).await?;
        let prefix = format!("arn:aws:iam::{}:", self.state.account);
        let invalid = || ApiError::invalid_input(format!("Invalid ARN {source_arn}."));
        let resource = source_arn.strip_prefix(&prefix).ok_or_else(invalid)?;
        let name = resource.rsplit('/').next().unwrap_or_default();
        let store = &self.state.store;
        let applicable = if resource.starts_with("user/") {
            let u = store
                .user_by_name(name)
                .await
                .map_err(|e| store_err(&e))?
                .ok_or_else(|| no_such_user(name))?;
            store
                .user_policies(&u.user_id)
                .await
                .map_err(|e| store_err(&e))?
        } else if resource.starts_with("group/") {
            let g = store
                .group_by_name(name)
                .await
                .map_err(|e| store_err(&e))?
                .ok_or_else(|| {
                    ApiError::no_such_entity(format!("The group with name {name} cannot be found."))
                })?;
            store.group_policies(&g).await.map_err(|e| store_err(&e))?
        } else {
            return Err(invalid());
        };
        PolicySet::compile(applicable)
    }

    fn simulate(
        &self,
        name: &'static str,
        set: &PolicySet,
        actions: &[String],
        resources: &[String],
        entries: &[ContextEntry],
        page: &stsd_proto::iam::Page,
    ) -> Result<IamOutput, ApiError> {
        let ctx = context_of(entries)?;
        let refs = set.refs();
        let mut missing: Vec<String> = Vec::new();
        for e in &set.entries {
            for k in e.policy.condition_keys() {
                if ctx.get(&k).is_none() && !missing.iter().any(|m| m.eq_ignore_ascii_case(&k)) {
                    missing.push(k);
                }
            }
        }
        let star = ["*".to_owned()];
        let resources = if resources.is_empty() {
            &star[..]
        } else {
            resources
        };
        let mut results = Vec::new();
        for a in actions {
            for r in resources {
                let d = stsd_policy::evaluate(
                    &refs,
                    &stsd_policy::Request {
                        action: a,
                        resource: r,
                        principal: None,
                        context: &ctx,
                    },
                );
                results.push(EvaluationResultView {
                    action_name: a.clone(),
                    resource_name: r.clone(),
                    decision: match d {
                        Decision::Allowed(_) => EvalDecision::Allowed,
                        Decision::ExplicitDeny(_) => EvalDecision::ExplicitDeny,
                        Decision::ImplicitDeny => EvalDecision::ImplicitDeny,
                    },
                    matched: matched_views(&d),
                    missing_context_values: missing.clone(),
                });
            }
        }
        let skip = page
            .marker
            .as_deref()
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(0);
        let total = results.len();
        let results: Vec<(usize, EvaluationResultView)> =
            results.into_iter().enumerate().skip(skip).collect();
        let (results, next_marker) = paged(results, page, |(i, _)| (i + 1).to_string());
        let _ = total;
        Ok(IamOutput::Simulation {
            action: name,
            results: results.into_iter().map(|(_, r)| r).collect(),
            next_marker,
        })
    }

    /// Runs a simulator action.
    ///
    /// # Errors
    /// The action's AWS error.
    pub(super) async fn execute_simulation(
        &self,
        action: &IamAction,
    ) -> Result<IamOutput, ApiError> {
        let name = action.name();
        match action {
            IamAction::SimulatePrincipalPolicy {
                policy_source_arn,
                policy_input_list,
                action_names,
                resource_arns,
                context_entries,
                page,
                ..
            } => {
                let mut set = self.principal_policies(action, policy_source_arn).await?;
                set.entries.extend(input_policies(policy_input_list)?);
                self.simulate(
                    name,
                    &set,
                    action_names,
                    resource_arns,
                    context_entries,
                    page,
                )
            }
            IamAction::SimulateCustomPolicy {
                policy_input_list,
                action_names,
                resource_arns,
                context_entries,
                page,
                ..
            } => {
                self.check(action, "*", "*").await?;
                let set = PolicySet {
                    entries: input_policies(policy_input_list)?,
                };
                self.simulate(
                    name,
                    &set,
                    action_names,
                    resource_arns,
                    context_entries,
                    page,
                )
            }
            IamAction::GetContextKeysForPrincipalPolicy {
                policy_source_arn,
                policy_input_list,
            } => {
                let mut set = self.principal_policies(action, policy_source_arn).await?;
                set.entries.extend(input_policies(policy_input_list)?);
                Ok(context_keys(name, &set))
            }
            IamAction::GetContextKeysForCustomPolicy { policy_input_list } => {
                self.check(action, "*", "*").await?;
                let set = PolicySet {
                    entries: input_policies(policy_input_list)?,
                };
                Ok(context_keys(name, &set))
            }
            other => self.execute_roles(other).await,
        }
    }
}

fn context_keys(name: &'static str, set: &PolicySet) -> IamOutput {
    let mut names: Vec<String> = Vec::new();
    for e in &set.entries {
        for k in e.policy.condition_keys() {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&k)) {
                names.push(k);
            }
        }
    }
    IamOutput::ContextKeys {
        action: name,
        names,
    }
}
