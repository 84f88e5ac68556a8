//! Server-side event filters: what `shrike events --filter` writes and the agent applies
//! before an event is serialized for a client.
//!
//! On the command line a filter is comma-separated terms, every one of which must hold:
//! `kind=process_exec|dns` (or `kind=` repeated), `rule=SHR-*` (glob on rule ids),
//! `severity>=high`, `pid=1234`, `binary=/usr/bin/*` (path glob), `container=3f2a` (id prefix,
//! or the container's name as its runtime knows it), `namespace=prod` and `pod=web-*` (the
//! Kubernetes pod's namespace, and a glob on its name).

use shrike_event::{Event, EventKind};
use shrike_rules::glob::Glob;
use shrike_rules::Severity;

use super::protocol::FilterSpec;

/// A compiled [`FilterSpec`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    kinds: Vec<EventKind>,
    rule: Option<Glob>,
    severity: Option<Severity>,
    pid: Option<u32>,
    binary: Option<Glob>,
    container: Option<String>,
    namespace: Option<String>,
    pod: Option<Glob>,
}

impl Filter {
    /// Compiles `spec`; the error names the bad term and what it accepts.
    pub fn compile(spec: &FilterSpec) -> Result<Filter, String> {
        let kinds = spec
            .kinds
            .iter()
            .map(|k| parse_kind(k))
            .collect::<Result<Vec<_>, _>>()?;
        let glob = |what: &str, g: &Option<String>| {
            g.as_deref()
                .map(Glob::new)
                .transpose()
                .map_err(|e| format!("{what}: {e}"))
        };
        let severity = spec
            .severity
            .as_deref()
            .map(|s| {
                Severity::parse(s).ok_or_else(|| {
                    format!("severity {s:?}: expected one of {}", Severity::choices())
                })
            })
            .transpose()?;
        Ok(Filter {
            kinds,
            rule: glob("rule", &spec.rule)?,
            severity,
            pid: spec.pid,
            binary: glob("binary", &spec.binary)?,
            container: spec.container.clone().filter(|c| !c.is_empty()),
            namespace: spec.namespace.clone().filter(|n| !n.is_empty()),
            pod: glob("pod", &spec.pod)?,
        })
    }

    /// Whether `event` passes every term.
    pub fn matches(&self, event: &Event) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&event.kind) {
            return false;
        }
        if self.pid.is_some_and(|pid| event.process.pid != pid) {
            return false;
        }
        if let Some(binary) = &self.binary {
            if !binary.matches(&event.process.binary) {
                return false;
            }
        }
        if let Some(wanted) = &self.container {
            let ids = [
                event.container.as_ref().map(|c| c.id.as_str()),
                event.process.container.as_ref().map(|c| c.id.as_str()),
                event
                    .incident()
                    .as_ref()
                    .and_then(|i| i.container.as_ref())
                    .map(|c| c.id.as_str()),
            ];
            let by_id = ids
                .iter()
                .flatten()
                .any(|id| !id.is_empty() && id.starts_with(wanted.as_str()));
            let by_name = event
                .container
                .as_ref()
                .is_some_and(|c| !c.name.is_empty() && c.name == *wanted);
            if !by_id && !by_name {
                return false;
            }
        }
        if self.namespace.is_some() || self.pod.is_some() {
            let Some(k8s) = &event.k8s else {
                return false;
            };
            if self.namespace.as_ref().is_some_and(|n| *n != k8s.namespace) {
                return false;
            }
            if self.pod.as_ref().is_some_and(|g| !g.matches(&k8s.pod)) {
                return false;
            }
        }
        if self.rule.is_none() && self.severity.is_none() {
            return true;
        }
        // Rule and severity: one alert (or the incident, or one of its rules) must satisfy both.
        let ok = |rule: &str, severity: &str| {
            self.rule.as_ref().is_none_or(|g| g.matches(rule))
                && self
                    .severity
                    .is_none_or(|min| Severity::parse(severity).is_some_and(|s| s >= min))
        };
        event.alerts.iter().any(|a| ok(&a.rule_id, &a.severity))
            || event
                .incident()
                .as_ref()
                .is_some_and(|i| i.rules.iter().any(|r| ok(&r.rule_id, &r.severity)))
    }
}

fn parse_kind(text: &str) -> Result<EventKind, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
        let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown event kind {text:?}: one of {}", all.join(", "))
    })
}

/// Parses the command line's `--filter` text into a [`FilterSpec`] (checked by compiling it).
pub fn parse(text: &str) -> Result<FilterSpec, String> {
    let mut spec = FilterSpec::default();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if let Some(min) = term.strip_prefix("severity>=") {
            spec.severity = Some(min.to_string());
            continue;
        }
        let Some((key, value)) = term.split_once('=') else {
            return Err(format!(
                "filter term {term:?}: expected key=value (kind, rule, pid, binary, container, namespace, pod) or severity>=LEVEL"
            ));
        };
        match key {
            "kind" | "kinds" => spec.kinds.extend(value.split('|').map(String::from)),
            "rule" => spec.rule = Some(value.to_string()),
            "severity" => {
                return Err(format!(
                    "filter term {term:?}: write severity>={value} (at least that severity)"
                ))
            }
            "pid" => {
                spec.pid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("filter term {term:?}: pid must be a number"))?,
                )
            }
            "binary" => spec.binary = Some(value.to_string()),
            "container" => spec.container = Some(value.to_string()),
            "namespace" => spec.namespace = Some(value.to_string()),
            "pod" => spec.pod = Some(value.to_string()),
            _ => {
                return Err(format!(
                    "filter term {term:?}: unknown key {key:?} (kind, rule, severity>=, pid, binary, container, namespace, pod)"
                ))
            }
        }
    }
    Filter::compile(&spec)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_event::{Alert, Container, Process, Timestamp};
    use std::sync::Arc;

    fn exec(binary: &str, pid: u32, alert: Option<(&str, &str)>) -> Event {
        let process = Process {
            pid,
            binary: binary.into(),
            container: Some(Arc::new(Container {
                id: "3f2a9c".into(),
                runtime: "docker".into(),
            })),
            ..Process::default()
        };
        let mut e = Event::new(
            Timestamp(1),
            EventKind::ProcessExec,
            "n".into(),
            Arc::new(process),
        );
        if let Some((rule, severity)) = alert {
            e.alerts.push(Alert {
                rule_id: rule.into(),
                rule: rule.into(),
                severity: severity.into(),
                action: "alert".into(),
                outcome: "alerted".into(),
                mitre: vec![],
                incident_id: None,
            });
        }
        e
    }

    fn passes(filter: &str, event: &Event) -> bool {
        Filter::compile(&parse(filter).unwrap())
            .unwrap()
            .matches(event)
    }

    /// Each term of the command line's filter selects what its documentation says.
    #[test]
    fn every_term_selects_what_it_says() {
        let plain = exec("/usr/bin/curl", 42, None);
        let high = exec("/usr/bin/curl", 42, Some(("SHR-C2-001", "high")));
        let low = exec("/tmp/x", 7, Some(("SHR-X-1", "low")));
        assert!(passes("", &plain));
        assert!(passes("kind=process_exec|dns", &plain));
        assert!(!passes("kind=dns", &plain));
        assert!(passes("binary=/usr/bin/*", &plain));
        assert!(!passes("binary=/usr/*", &plain), "* does not cross /");
        assert!(passes("binary=/usr/**", &plain));
        assert!(passes("pid=42", &plain) && !passes("pid=43", &plain));
        assert!(passes("container=3f2a", &plain) && !passes("container=ffff", &plain));
        let mut named = exec("/usr/bin/curl", 42, None);
        named.container = Some(Arc::new(shrike_event::ContainerIdentity {
            id: "9b1e".into(),
            name: "web".into(),
            ..Default::default()
        }));
        assert!(passes("container=web", &named) && passes("container=9b1e", &named));
        assert!(!passes("container=we", &named), "names match whole");
        assert!(!passes("namespace=prod", &named), "no pod, no namespace");
        let mut in_pod = named.clone();
        in_pod.k8s = Some(Arc::new(shrike_event::PodIdentity {
            namespace: "prod".into(),
            pod: "web-7d9f".into(),
            ..Default::default()
        }));
        assert!(passes("namespace=prod", &in_pod) && !passes("namespace=pro", &in_pod));
        assert!(passes("pod=web-*", &in_pod) && !passes("pod=db-*", &in_pod));
        assert!(passes("namespace=prod,pod=web-*,container=web", &in_pod));
        assert!(!passes("namespace=dev,pod=web-*", &in_pod));
        assert!(!passes("severity>=low", &plain), "no alert, no severity");
        assert!(passes("severity>=high", &high) && !passes("severity>=critical", &high));
        assert!(passes("severity>=info", &low) && !passes("severity>=medium", &low));
        assert!(passes("rule=SHR-C2-*", &high) && !passes("rule=SHR-C2-*", &low));
        assert!(passes("rule=SHR-*,severity>=high,pid=42", &high));
        assert!(!passes("rule=SHR-X-*,severity>=high", &low));
    }

    /// Bad terms are refused with a message naming the term and what is accepted.
    #[test]
    fn bad_terms_are_refused_with_the_reason() {
        assert!(parse("kind=proces_exec")
            .unwrap_err()
            .contains("unknown event kind"));
        assert!(parse("severity=high")
            .unwrap_err()
            .contains("severity>=high"));
        assert!(parse("severity>=urgent").unwrap_err().contains("info|low"));
        assert!(parse("pid=x").unwrap_err().contains("number"));
        assert!(parse("user=root").unwrap_err().contains("unknown key"));
        assert!(parse("binary=[").unwrap_err().contains("binary"));
    }
}
