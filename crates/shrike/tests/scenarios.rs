//! The scenario runner: the agent with its default pack, each script of the scenario manifests
//! run as root, and the manifest's expectation checked — an alert carrying the technique (or
//! its parent) raised by the scenario's own processes for `alert` rows, no alert at all from
//! them for `none` rows. Two sets run: the vendored (or shared) scenarios and the pack's own
//! (`tests/pack-scenarios`). Alert shaping is measured too: every attack scenario must make
//! exactly one incident, and `reverse-shell-devtcp` at most 3 written alerts. Prints one row per
//! scenario with the alerts written and incidents, a summary per technique and a summary line
//! (`./dev scenarios` shows them).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Where the scenarios are: $SHRIKE_SCENARIOS, else shared/ beside the repository, else the
/// vendored copy in tests/scenarios.
fn scenarios_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SHRIKE_SCENARIOS") {
        return dir.into();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shared = repo.join("../shared/scenarios");
    if shared.join("manifest.tsv").exists() {
        shared
    } else {
        repo.join("tests/scenarios")
    }
}

/// The repository's own scenarios, run after the vendored set.
fn pack_scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/pack-scenarios")
}

struct Row {
    name: String,
    technique: String,
    expect_alert: bool,
    /// The directory the script and its manifest are in.
    dir: PathBuf,
}

fn manifest(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("manifest.tsv")).expect("manifest.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "manifest line {l:?}");
            let expect_alert = match cols[2] {
                "alert" => true,
                "none" => false,
                other => panic!("manifest: unknown expectation {other:?}"),
            };
            Row {
                name: cols[0].into(),
                technique: cols[1].into(),
                expect_alert,
                dir: dir.to_path_buf(),
            }
        })
        .collect()
}

/// `T1059.004` is satisfied by `T1059.004` or by its parent `T1059`.
fn technique_matches(alert_mitre: &Value, technique: &str) -> bool {
    let parent = technique.split('.').next().unwrap_or(technique);
    alert_mitre
        .as_array()
        .is_some_and(|m| m.iter().any(|t| t == technique || t == parent))
}

/// Whether the event was caused by the scenario: its process, or one of its ancestors, is the
/// scenario's shell image.
fn caused_by(event: &Value, exec_id: &Value) -> bool {
    event["process"]["exec_id"] == *exec_id
        || event["ancestors"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["exec_id"] == *exec_id))
}

/// How long to wait for a scenario's own exec event: generous, because the test machine is
/// shared and the agent under test is a debug build.
const SCENARIO_WAIT: Duration = Duration::from_secs(30);

#[test]
fn default_pack_catches_every_attack_scenario_and_stays_quiet_on_benign_ones() {
    if !require_root("default_pack_catches_every_attack_scenario_and_stays_quiet_on_benign_ones") {
        return;
    }
    let mut rows = manifest(&scenarios_dir());
    rows.extend(manifest(&pack_scenarios_dir()));
    let agent = Agent::start(&[]);
    let mut table = vec![format!(
        "{:<34} {:<10} {:<6} {:<6} {:>6} {:>9} {}",
        "scenario", "technique", "expect", "result", "alerts", "incidents", "rules"
    )];
    let mut failures = Vec::new();
    let mut by_technique: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for row in &rows {
        let script = row.dir.join(format!("{}.sh", row.name));
        let mut child = Command::new("sh")
            .arg(&script)
            .current_dir(&row.dir)
            .spawn()
            .expect("running a scenario");
        let pid = child.id();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "scenario {} failed to run: {status}",
            row.name
        );
        let script_arg = script.to_str().unwrap().to_string();
        let waited = std::time::Instant::now();
        let sh = agent.wait_for(
            &format!("exec of scenario {}", row.name),
            SCENARIO_WAIT,
            |e| kind_is(e, "process_exec") && e["process"]["pid"] == pid && has_arg(e, &script_arg),
        );
        if waited.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "{}: its exec event came {:?} after it ended",
                row.name,
                waited.elapsed()
            );
        }
        let exec_id = sh["process"]["exec_id"].clone();
        // Let the last records of the scenario through the ring buffer (polled every 100 ms).
        std::thread::sleep(Duration::from_millis(1500));
        let alerts: Vec<Value> = agent
            .events(|e| {
                e["alerts"].as_array().is_some_and(|a| !a.is_empty()) && caused_by(e, &exec_id)
            })
            .iter()
            .flat_map(|e| e["alerts"].as_array().cloned().unwrap_or_default())
            .collect();
        let ids: Vec<String> = alerts
            .iter()
            .map(|a| a["rule_id"].as_str().unwrap_or("?").to_string())
            .collect();
        // Incidents: the ones the scenario's alerts name and the ones rooted in it (an
        // incident whose every alert was a duplicate of an earlier scenario's has no alert).
        let incident_events = agent.events(|e| kind_is(e, "incident") && caused_by(e, &exec_id));
        let mut incidents: Vec<&str> = alerts
            .iter()
            .map(|a| &a["incident_id"])
            .chain(incident_events.iter().map(|e| &e["incident"]["id"]))
            .filter_map(Value::as_str)
            .collect();
        incidents.sort_unstable();
        incidents.dedup();
        let techniques = alerts
            .iter()
            .map(|a| &a["mitre"])
            .chain(incident_events.iter().map(|e| &e["incident"]["techniques"]));
        let mut ok = if row.expect_alert {
            techniques
                .into_iter()
                .any(|m| technique_matches(m, &row.technique))
                && incidents.len() == 1
        } else {
            alerts.is_empty() && incidents.is_empty()
        };
        if row.name == "reverse-shell-devtcp" && alerts.len() > 3 {
            ok = false;
        }
        let expect = if row.expect_alert { "alert" } else { "none" };
        let verdict = if ok { "pass" } else { "FAIL" };
        let mut shown = ids.clone();
        shown.dedup();
        let tally = by_technique
            .entry(if row.expect_alert {
                row.technique.clone()
            } else {
                "benign".into()
            })
            .or_default();
        tally.0 += usize::from(ok);
        tally.1 += 1;
        table.push(format!(
            "{:<34} {:<10} {:<6} {:<6} {:>6} {:>9} {}",
            row.name,
            row.technique,
            expect,
            verdict,
            alerts.len(),
            incidents.len(),
            shown.join(",")
        ));
        if !ok {
            failures.push(row.name.clone());
        }
    }
    let passed = rows.len() - failures.len();
    table.push(String::new());
    table.push(format!("{:<10} {:>6}", "technique", "passed"));
    for (technique, (ok, all)) in &by_technique {
        table.push(format!("{technique:<10} {:>6}", format!("{ok}/{all}")));
    }
    let (attacks_ok, attacks): (usize, usize) = by_technique
        .iter()
        .filter(|(t, _)| *t != "benign")
        .fold((0, 0), |(a, b), (_, (ok, all))| (a + ok, b + all));
    table.push(format!(
        "attacks detected: {attacks_ok}/{attacks}; benign quiet: {}/{}",
        by_technique.get("benign").map_or(0, |t| t.0),
        by_technique.get("benign").map_or(0, |t| t.1)
    ));
    table.push(format!("scenarios: {passed}/{} passed", rows.len()));
    println!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "scenarios that failed: {failures:?}\n{}",
        table.join("\n")
    );
}

/// The repository's own files that sit beside the vendored scenarios and are not copies.
const NOT_VENDORED: &[&str] = &["VENDORED.md", "SHA256SUMS"];

/// `tests/scenarios/SHA256SUMS` (the `sha256sum` format): file name → SHA-256, hex.
fn checksum_manifest(repo: &Path) -> BTreeMap<String, String> {
    let path = repo.join("tests/scenarios/SHA256SUMS");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (sum, name) = l
                .split_once("  ")
                .unwrap_or_else(|| panic!("SHA256SUMS line is not 'SUM  NAME': {l:?}"));
            (name.to_string(), sum.to_string())
        })
        .collect()
}

/// SHA-256 of every regular file in `dir` but `skip`, by name, computed with `sha256sum`.
fn checksums(dir: &Path, skip: &[&str]) -> BTreeMap<String, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !skip.contains(&n.as_str()))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no files in {}", dir.display());
    let out = Command::new("sha256sum")
        .arg("--")
        .args(&names)
        .current_dir(dir)
        .output()
        .expect("running sha256sum (coreutils)");
    assert!(out.status.success(), "sha256sum failed: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (sum, name) = l.split_once("  ").unwrap();
            (name.to_string(), sum.to_string())
        })
        .collect()
}

/// Names whose checksums differ between two listings, or that only one has.
fn differences(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The vendored scenarios are exactly what `tests/scenarios/SHA256SUMS` records: no file
/// changed, none missing, none added without being recorded. Runs everywhere (no `shared/`
/// needed), so a vendored script cannot drift from what was copied unnoticed.
#[test]
fn vendored_scenarios_match_their_checksum_manifest() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let recorded = checksum_manifest(&repo);
    let actual = checksums(&repo.join("tests/scenarios"), NOT_VENDORED);
    let differ = differences(&recorded, &actual);
    assert!(
        differ.is_empty(),
        "tests/scenarios differs from its SHA256SUMS in {differ:?}: re-vendor from the original \
         (see tests/scenarios/VENDORED.md) and re-record the sums"
    );
}

/// Where the original scenarios are when they are beside the repository: `$SHRIKE_SHARED_DIR`,
/// else `../shared`, with `scenarios/` under it.
fn shared_scenarios() -> PathBuf {
    let shared = std::env::var_os("SHRIKE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    shared.join("scenarios")
}

/// When the original scenarios are beside the repository, the checksum manifest (and so the
/// vendored copy, by the test above) is theirs: same files, same bytes. Where they are not (a
/// clone on its own) nothing can be compared, and the test says so on its output.
#[test]
fn vendored_scenarios_match_the_shared_ones_when_shared_is_present() {
    let shared = shared_scenarios();
    if !shared.is_dir() {
        println!(
            "NOT COMPARED: {} does not exist (no shared/ beside this clone); the vendored copy is \
             still checked against tests/scenarios/SHA256SUMS",
            shared.display()
        );
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let recorded = checksum_manifest(&repo);
    let original = checksums(&shared, &[]);
    let differ = differences(&recorded, &original);
    assert!(
        differ.is_empty(),
        "{} differs from tests/scenarios/SHA256SUMS in {differ:?}: copy the changed files into \
         tests/scenarios/ and re-record the sums (see tests/scenarios/VENDORED.md)",
        shared.display()
    );
    println!(
        "compared: {} files of {} match the vendored copy",
        original.len(),
        shared.display()
    );
}
