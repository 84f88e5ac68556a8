//! The command-line flags of alert shaping and the validated configuration they become.

use std::time::Duration;

use anyhow::{bail, Result};
use shrike_rules::Rate;

/// How alerts are shaped before they are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapingConfig {
    /// Off: every match is its own alert, no incidents (`--no-shaping`).
    pub enabled: bool,
    /// An incident closes after this long without a new alert; alerts that belong to it join
    /// it only while it is open.
    pub incident_window: Duration,
    /// At most one `incident` update per incident per this period; also how often
    /// `alerts_suppressed` is written (when something was suppressed).
    pub update_interval: Duration,
    /// Repeats of one rule on one image and target within this period are counted, not
    /// written. Zero turns deduplication off.
    pub dedup_window: Duration,
    /// At most this many alerts written in all; `None`: no global limit.
    pub alert_limit: Option<Rate>,
}

impl Default for ShapingConfig {
    fn default() -> Self {
        ShapingConfig {
            enabled: true,
            incident_window: Duration::from_secs(120),
            update_interval: Duration::from_secs(10),
            dedup_window: Duration::from_secs(60),
            alert_limit: Some(Rate {
                count: 1000,
                per_secs: 60,
            }),
        }
    }
}

/// `shrike run`'s alert-shaping flags (flattened into `RunArgs`).
#[derive(Debug, Clone, clap::Args)]
pub struct ShapingArgs {
    /// Seconds without a new alert after which an incident closes. Alerts in the same process
    /// tree (below the first alerting image, or the shell that started it) or the same
    /// container join the open incident.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub incident_window: u64,

    /// At most one update of an open incident per this many seconds; suppressed alerts are
    /// reported at the same pace.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub incident_update: u64,

    /// Repeats of the same rule on the same image and target within this many seconds are
    /// counted, not written (0: no deduplication).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub dedup_window: u64,

    /// At most this many alerts written in all, as N/s, N/min or N/h (`none`: no limit); the
    /// rest are counted per rule in `alerts_suppressed` events.
    #[arg(long, value_name = "RATE", default_value = "1000/min")]
    pub alert_limit: String,

    /// Write every rule match as its own alert: no incidents, deduplication or rate limits.
    #[arg(long)]
    pub no_shaping: bool,
}

impl ShapingArgs {
    /// The validated configuration.
    pub fn config(&self) -> Result<ShapingConfig> {
        if self.incident_window == 0 {
            bail!("--incident-window 0: give at least 1 second");
        }
        if self.incident_update == 0 {
            bail!("--incident-update 0: give at least 1 second");
        }
        let alert_limit = match self.alert_limit.as_str() {
            "none" => None,
            text => {
                Some(Rate::parse(text).map_err(|e| anyhow::anyhow!("--alert-limit {text}: {e}"))?)
            }
        };
        Ok(ShapingConfig {
            enabled: !self.no_shaping,
            incident_window: Duration::from_secs(self.incident_window),
            update_interval: Duration::from_secs(self.incident_update),
            dedup_window: Duration::from_secs(self.dedup_window),
            alert_limit,
        })
    }
}
