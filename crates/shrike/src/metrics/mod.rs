//! Prometheus metrics: a registry of metric families read at scrape time, written in the text
//! exposition format 0.0.4, and served over HTTP by [`http::MetricsServer`] (`--metrics`).
//!
//! A family is registered once with a closure that reads its current values from wherever
//! they live — atomics the pipeline bumps ([`agent::AgentStats`]), the kernel's counter map,
//! `/proc/self` — so the hot path never formats anything and a scrape costs only the scrape.
//! Adding a labelled family (per-output counters, say) is one [`Registry::family`] call.

pub mod agent;
pub mod http;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// What kind of metric a family is (the `# TYPE` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (name ends in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

type Read = Box<dyn Fn(&mut Samples<'_>) + Send + Sync>;

struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    read: Read,
}

/// The metric families the agent exports. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Registry {
    families: Arc<Mutex<Vec<Family>>>,
}

/// Where a family's reader writes its samples: one [`Samples::add`] per label combination.
pub struct Samples<'a> {
    out: &'a mut String,
    name: &'static str,
    labels: &'static [&'static str],
}

impl Samples<'_> {
    /// One sample: `values` in the order of the family's label names.
    pub fn add(&mut self, values: &[&str], value: f64) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        self.out.push_str(self.name);
        if !self.labels.is_empty() {
            self.out.push('{');
            for (i, (label, v)) in self.labels.iter().zip(values).enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape_label(self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        write_value(self.out, value);
        self.out.push('\n');
    }
}

impl Registry {
    /// Registers a family: `name` (Prometheus conventions: `shrike_` prefix, unit suffix,
    /// `_total` for counters), its help text, its label names, and the closure that writes its
    /// current samples at every scrape. A family whose reader adds no sample is left out of
    /// the exposition.
    ///
    /// ```
    /// # use shrike::metrics::{Kind, Registry};
    /// # use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
    /// let registry = Registry::default();
    /// let sent: Arc<Vec<(String, AtomicU64)>> = Arc::new(vec![("siem".into(), AtomicU64::new(3))]);
    /// registry.family("shrike_output_sent_total", "Events delivered, per output.",
    ///     Kind::Counter, &["output"], move |s| {
    ///         for (name, n) in sent.iter() {
    ///             s.add(&[name], n.load(Ordering::Relaxed) as f64);
    ///         }
    ///     });
    /// assert!(registry.render().contains("shrike_output_sent_total{output=\"siem\"} 3\n"));
    /// ```
    pub fn family(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &'static [&'static str],
        read: impl Fn(&mut Samples<'_>) + Send + Sync + 'static,
    ) {
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        families.retain(|f| f.name != name);
        families.push(Family {
            name,
            help,
            kind,
            labels,
            read: Box::new(read),
        });
    }

    /// A family without labels and one value.
    pub fn single(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        self.family(name, help, kind, &[], move |s| s.add(&[], read()));
    }

    /// The names of the registered families, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        families.iter().map(|f| f.name).collect()
    }

    /// Every family in the text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(16 * 1024);
        let mut body = String::new();
        for family in families.iter() {
            body.clear();
            (family.read)(&mut Samples {
                out: &mut body,
                name: family.name,
                labels: family.labels,
            });
            if body.is_empty() {
                continue;
            }
            let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
            let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
            out.push_str(&body);
        }
        out
    }
}

/// Whether `name` is a valid metric or label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 9.007_199_254_740_992e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label values with quotes, backslashes and newlines are escaped; help text too; values
    /// are integers where they are whole and Prometheus's spellings for the special floats.
    #[test]
    fn exposition_escapes_labels_and_writes_values_as_prometheus_reads_them() {
        let r = Registry::default();
        r.family(
            "shrike_x_total",
            "Line one\\two\nthree",
            Kind::Counter,
            &["a", "b"],
            |s| {
                s.add(&["q\"uote", "back\\slash\nnl"], 3.0);
                s.add(&["x", "y"], 0.5);
            },
        );
        r.single("shrike_inf", "inf", Kind::Gauge, || f64::INFINITY);
        r.family("shrike_empty", "none", Kind::Gauge, &[], |_| {});
        assert_eq!(
            r.render(),
            "# HELP shrike_x_total Line one\\\\two\\nthree\n# TYPE shrike_x_total counter\n\
             shrike_x_total{a=\"q\\\"uote\",b=\"back\\\\slash\\nnl\"} 3\n\
             shrike_x_total{a=\"x\",b=\"y\"} 0.5\n\
             # HELP shrike_inf inf\n# TYPE shrike_inf gauge\nshrike_inf +Inf\n"
        );
    }

    /// Registering a family again replaces it (a reload re-registers without duplicates).
    #[test]
    fn registering_a_name_again_replaces_the_family() {
        let r = Registry::default();
        r.single("shrike_a", "a", Kind::Gauge, || 1.0);
        r.single("shrike_a", "a", Kind::Gauge, || 2.0);
        assert_eq!(r.names(), vec!["shrike_a"]);
        assert!(r.render().ends_with("shrike_a 2\n"));
    }
}
