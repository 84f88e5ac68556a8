//! Policy reload in the running agent: compile the files anew, hold a reload that loosens
//! enforcing rules until the files settle, check capabilities and load the kernel rules, and
//! only then switch policy; every attempt becomes a `policy_change` event.

use std::sync::Arc;

use shrike_bpf::Sensors;
use shrike_event::PolicyChange;
use shrike_rules::text::render_diagnostics;
use tracing::{error, info, warn};

use super::{check_capabilities, RunConfig};
use crate::detect::Detector;
use crate::enforcement;
use crate::file_watch;
use crate::health;
use crate::policy_source::{enforced_changes, Due, PolicyWatch, Trigger, HOLD};
use crate::workload::scope::ScopeKeeper;

/// What a reload attempt did.
pub(super) struct Reloaded {
    /// What the `policy_change` event reports; `None` when the files changed while being read
    /// (the watch then waits for them to settle again).
    pub(super) change: Option<PolicyChange>,
    /// The rules not in force under the new policy, when it was applied.
    pub(super) missing: Option<Vec<health::Missing>>,
}

/// Compiles the policy anew and, only if it compiles, its files did not change meanwhile, the
/// capabilities its rules need are here (or `--allow-degraded`) and its kernel rules are in
/// place, puts it in force: the kernel maps switch generation atomically, then user space
/// switches policy. A policy that loosens enforcing rules waits for the files to stay
/// unchanged for [`HOLD`] unless SIGHUP asked (`policy_source` says why).
/// What a reload loads the new policy's kernel side into.
#[derive(Clone, Copy)]
pub(super) struct KernelSide<'a> {
    pub sensors: &'a Sensors,
    pub capabilities: &'a [shrike_bpf::capability::Status],
    pub configured_watch: Option<&'a shrike_bpf::file::WatchSet>,
    pub scopes: &'a ScopeKeeper,
}

pub(super) fn reload(
    config: &RunConfig,
    kernel: KernelSide<'_>,
    detector: &mut Detector,
    watch: &mut PolicyWatch,
    due: Due,
) -> Reloaded {
    let KernelSide {
        sensors,
        capabilities,
        configured_watch,
        scopes,
    } = kernel;
    let source = &config.policy;
    let mut change = PolicyChange {
        trigger: due.trigger.as_str().to_string(),
        source: source.describe(),
        ..PolicyChange::default()
    };
    let refused = |mut change: PolicyChange, reason: String| {
        change.status = "refused".into();
        change.reason = reason;
        Reloaded {
            change: Some(change),
            missing: None,
        }
    };
    let policy = match source.compile() {
        Ok(policy) => policy,
        Err(diags) => {
            if !watch.unchanged() {
                return Reloaded {
                    change: None,
                    missing: None,
                };
            }
            watch.finish();
            let text = render_diagnostics(&diags);
            error!(
                "policy reload refused, the running policy stays in force:\n{}",
                text.trim_end()
            );
            return refused(
                change,
                format!("the policy does not compile: {}", text.trim_end()),
            );
        }
    };
    if !watch.unchanged() {
        return Reloaded {
            change: None,
            missing: None,
        };
    }
    change.rules = policy.rules().count();
    change.enforced = enforced_changes(detector.policy(), &policy);
    let named = change
        .enforced
        .iter()
        .map(|c| format!("{} ({} -> {})", c.rule_id, c.was, c.now))
        .collect::<Vec<_>>()
        .join(", ");
    if !change.enforced.is_empty() && due.trigger == Trigger::FileChanged && due.stable_for < HOLD {
        watch.hold(HOLD);
        change.status = "held".into();
        change.reason = format!(
            "it loosens enforcing rules: {named}; it is applied once the files have not changed for {} s, or at once on SIGHUP",
            HOLD.as_secs()
        );
        warn!(rules = %named, "policy reload held: it loosens enforcing rules; applied once the files stay unchanged for {} s, or on SIGHUP", HOLD.as_secs());
        return Reloaded {
            change: Some(change),
            missing: None,
        };
    }
    watch.finish();
    let missing = match check_capabilities(&policy, capabilities, config.allow_degraded) {
        Ok(missing) => missing,
        Err(err) => {
            error!("policy reload refused, the running policy stays in force: {err:#}");
            return refused(change, format!("{err:#}"));
        }
    };
    // The file rules switch with the watch set, under the scope keeper's lock like the exec
    // rules: a container described meanwhile is in the new sets or added after the switch.
    let loaded = scopes.load(policy.workload_scopes(), policy.kernel_plan(), |cgroups| {
        enforcement::load(sensors, policy.kernel_plan(), config.strict, cgroups)?;
        match (sensors.file_watch(), configured_watch) {
            (Some(watch), Some(configured)) => watch
                .replace(&file_watch::merged(
                    configured,
                    policy.kernel_plan(),
                    cgroups,
                ))
                .map(|_| ()),
            _ => Ok(()),
        }
    });
    match loaded {
        Ok(()) => {
            if named.is_empty() {
                info!(rules = change.rules, source = %change.source, "policy reloaded");
            } else {
                warn!(rules = change.rules, source = %change.source, loosened = %named, "policy reloaded; it loosens enforcing rules");
            }
            detector.replace(Arc::new(policy));
            change.status = "applied".into();
            Reloaded {
                change: Some(change),
                missing: Some(missing),
            }
        }
        Err(err) => {
            error!(%err, "policy reload refused: its kernel rules could not be loaded; the running policy stays in force");
            refused(
                change,
                format!("its kernel rules could not be loaded: {err}"),
            )
        }
    }
}
