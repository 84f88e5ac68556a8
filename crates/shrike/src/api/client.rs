//! The command line on the API: `shrike events`, `shrike ps`, `shrike status`.
//!
//! Each connects to the agent's socket, writes one request line and prints the replies. When
//! no agent answers, or the socket is root's, the error says so and what to do.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::filter;
use super::protocol::{ReplyLine, Request, DEFAULT_SOCKET};

/// The socket option every client command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct SocketArg {
    /// The agent's API socket (`shrike run --api-socket`).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, env = "SHRIKE_API_SOCKET")]
    pub api_socket: PathBuf,
}

/// `shrike events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Keep streaming new events until interrupted (without it: the recent events the agent
    /// keeps, then exit).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only events passing every comma-separated term: kind=process_exec|dns, rule=GLOB,
    /// severity>=high, pid=N, binary=GLOB (e.g. /usr/bin/*), container=ID-PREFIX or NAME,
    /// namespace=NS, pod=GLOB (the Kubernetes pod).
    #[arg(long, value_name = "TERMS")]
    pub filter: Option<String>,
    /// At most this many recent events (without --follow).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Event format.
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    pub output: crate::output::OutputFormat,
    #[command(flatten)]
    pub socket: SocketArg,
}

/// `shrike ps`.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show the processes as a tree (children under their parent).
    #[arg(long)]
    pub tree: bool,
    /// Show this process and its ancestry.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Print the agent's JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub socket: SocketArg,
}

/// `shrike status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the agent's JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub socket: SocketArg,
}

/// Connects to the agent, with an error that says what is wrong and what to do.
pub fn connect(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => anyhow!(
            "no agent at {}: is `shrike run` running? (--api-socket)",
            path.display()
        ),
        io::ErrorKind::PermissionDenied => anyhow!(
            "permission denied on {}: the shrike API is for root (run with sudo)",
            path.display()
        ),
        _ => anyhow!("connecting to {}: {err}", path.display()),
    })
}

/// A connection with one request sent.
struct Session {
    lines: std::io::Lines<BufReader<UnixStream>>,
    path: PathBuf,
}

impl Session {
    fn open(path: &Path, request: &Request) -> Result<Session> {
        let mut conn = connect(path)?;
        let mut text = serde_json::to_string(request)?;
        text.push('\n');
        conn.write_all(text.as_bytes())
            .with_context(|| format!("sending the request to {}", path.display()))?;
        Ok(Session {
            lines: BufReader::new(conn).lines(),
            path: path.to_path_buf(),
        })
    }

    /// The next reply; an error reply becomes an error.
    fn next(&mut self) -> Result<Option<ReplyLine>> {
        let Some(line) = self.lines.next() else {
            return Ok(None);
        };
        let line = line.with_context(|| format!("reading from {}", self.path.display()))?;
        let reply: ReplyLine = serde_json::from_str(&line)
            .with_context(|| format!("the agent sent a line that is not a reply: {line}"))?;
        if reply.kind == "error" {
            bail!("the agent says: {}", reply.message.unwrap_or_default());
        }
        Ok(Some(reply))
    }

    /// The `result` of a one-shot request.
    fn result(mut self) -> Result<Value> {
        match self.next()? {
            Some(r) if r.kind == "result" => Ok(r.result.unwrap_or(Value::Null)),
            Some(r) => bail!("unexpected reply of type {:?}", r.kind),
            None => bail!("the agent closed the connection without answering"),
        }
    }
}

/// `shrike events`.
pub fn events(args: &EventsArgs) -> Result<ExitCode> {
    let spec = match &args.filter {
        Some(text) => filter::parse(text).map_err(|e| anyhow!("--filter: {e}"))?,
        None => Default::default(),
    };
    let request = Request::Events {
        follow: args.follow,
        filter: spec,
        limit: args.limit,
    };
    let mut session = Session::open(&args.socket.api_socket, &request)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    while let Some(reply) = session.next()? {
        match reply.kind.as_str() {
            "event" => {
                let Some(raw) = reply.event else { continue };
                let printed = match args.output {
                    crate::output::OutputFormat::Json => writeln!(out, "{}", raw.get()),
                    crate::output::OutputFormat::Compact => {
                        match serde_json::from_str::<shrike_event::Event>(raw.get()) {
                            Ok(event) => {
                                writeln!(out, "{}", shrike_event::compact::render(&event))
                            }
                            Err(_) => writeln!(out, "{}", raw.get()),
                        }
                    }
                };
                if printed.is_err() {
                    return Ok(ExitCode::SUCCESS); // stdout closed (| head)
                }
                if args.follow {
                    let _ = out.flush();
                }
            }
            "end" => {
                let _ = out.flush();
                let reason = reply.reason.unwrap_or_default();
                return match reason.as_str() {
                    "done" => Ok(ExitCode::SUCCESS),
                    "shutdown" => {
                        eprintln!("shrike: the agent stopped");
                        Ok(ExitCode::SUCCESS)
                    }
                    _ => bail!(
                        "the agent ended the stream ({reason}): {}",
                        reply.message.unwrap_or_default()
                    ),
                };
            }
            _ => {}
        }
    }
    let _ = out.flush();
    bail!("the agent closed the connection (it stopped?)")
}

/// `shrike ps`.
pub fn ps(args: &PsArgs) -> Result<ExitCode> {
    let result =
        Session::open(&args.socket.api_socket, &Request::Ps { pid: args.pid })?.result()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    if args.pid.is_some() {
        // Root first, the process last.
        let mut chain: Vec<&Value> = result["ancestry"]
            .as_array()
            .map(|a| a.iter().rev().collect())
            .unwrap_or_default();
        chain.push(&result["process"]);
        for (depth, p) in chain.iter().enumerate() {
            text.push_str(&row(p, depth));
        }
    } else {
        let list = result["processes"].as_array().cloned().unwrap_or_default();
        text.push_str(&format!(
            "{:>7} {:>7} {:>6}  COMMAND\n",
            "PID", "PPID", "UID"
        ));
        if args.tree {
            text.push_str(&tree(&list));
        } else {
            for p in &list {
                text.push_str(&row(p, 0));
            }
        }
    }
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn row(p: &Value, depth: usize) -> String {
    let args: Vec<&str> = p["args"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let binary = p["binary"].as_str().unwrap_or("?");
    let rest = args.get(1..).unwrap_or_default().join(" ");
    let indent = if depth == 0 {
        String::new()
    } else {
        format!("{}└─ ", "   ".repeat(depth - 1))
    };
    format!(
        "{:>7} {:>7} {:>6}  {indent}{binary}{}{rest}\n",
        p["pid"],
        p["ppid"],
        p["uid"],
        if rest.is_empty() { "" } else { " " }
    )
}

/// Processes under their parents; roots are those whose parent is not in the list.
fn tree(list: &[Value]) -> String {
    let pids: std::collections::HashSet<u64> =
        list.iter().filter_map(|p| p["pid"].as_u64()).collect();
    let mut children: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    let mut roots = Vec::new();
    for p in list {
        let ppid = p["ppid"].as_u64().unwrap_or(0);
        if pids.contains(&ppid) && p["pid"].as_u64() != Some(ppid) {
            children.entry(ppid).or_default().push(p);
        } else {
            roots.push(p);
        }
    }
    let mut out = String::new();
    let mut stack: Vec<(&Value, usize)> = roots.into_iter().rev().map(|p| (p, 0)).collect();
    while let Some((p, depth)) = stack.pop() {
        out.push_str(&row(p, depth));
        if let Some(kids) = p["pid"].as_u64().and_then(|pid| children.get(&pid)) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    out
}

/// `shrike status`.
pub fn status(args: &StatusArgs) -> Result<ExitCode> {
    let s = Session::open(&args.socket.api_socket, &Request::Status)?.result()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = String::new();
    t.push_str(&format!(
        "shrike {} (pid {}) on {}, up {} s, {} MiB resident\n",
        s["version"].as_str().unwrap_or("?"),
        s["pid"],
        s["node"].as_str().unwrap_or("?"),
        s["uptime_seconds"],
        s["rss_bytes"].as_u64().unwrap_or(0) / (1 << 20)
    ));
    let p = &s["policy"];
    t.push_str(&format!(
        "policy: generation {}, {} rules ({}); reloads {} ok, {} failed\n",
        p["generation"],
        p["rules"],
        p["source"].as_str().unwrap_or(""),
        p["reloads_succeeded"],
        p["reloads_failed"]
    ));
    t.push_str("capabilities:\n");
    for c in s["capabilities"].as_array().into_iter().flatten() {
        t.push_str(&format!(
            "  {:<18} {:<12} {}\n",
            c["name"].as_str().unwrap_or(""),
            c["state"].as_str().unwrap_or(""),
            c["reason"].as_str().or(c["hook"].as_str()).unwrap_or("")
        ));
    }
    if let Some(rules) = s["rules_not_in_force"].as_array().filter(|r| !r.is_empty()) {
        t.push_str(&format!("rules not in force ({}):\n", rules.len()));
        for r in rules.iter().take(10) {
            t.push_str(&format!(
                "  {} (needs {})\n",
                r["rule_id"].as_str().unwrap_or(""),
                r["capability"].as_str().unwrap_or("")
            ));
        }
        if rules.len() > 10 {
            t.push_str(&format!(
                "  … {} more (--json lists them all)\n",
                rules.len() - 10
            ));
        }
    }
    let total: u64 = s["events"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let alerts: u64 = s["alerts"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["count"].as_u64()).sum())
        .unwrap_or(0);
    t.push_str(&format!(
        "events: {total}; alerts: {alerts}; incidents: {} opened, {} open\n",
        s["incidents"]["opened"], s["incidents"]["open"]
    ));
    t.push_str(&format!(
        "kernel: {} records lost (ring buffer full); process tree: {} live, {} retained\n",
        s["kernel"]["ringbuf_full"], s["process_tree"]["live"], s["process_tree"]["retained"]
    ));
    t.push_str(&format!(
        "api: {} clients, {} cut off for reading too slowly, {} events dropped\n",
        s["api"]["clients"], s["api"]["cut_off"], s["api"]["events_dropped"]
    ));
    print!("{t}");
    Ok(ExitCode::SUCCESS)
}
