//! What an event carries besides its process context: one [`Payload`], whose variant is the one
//! the event's kind has in the table of kinds ([`super::KINDS`]), so an event cannot carry a
//! `file` object on a `net_connect` or two objects at once. Events are built by kind
//! ([`Event::new`]) and given their object through the typed setters below, which check the
//! kind in debug builds; events read back from JSON are checked by the reader
//! ([`Payload::from_objects`]).

use std::borrow::{Borrow, BorrowMut};

use super::{
    BpfLoad, CredChange, Dns, Event, EventKind, Exit, FileInfo, Health, Lost, Memfd, Module, Mount,
    NamespaceChange, Network, PayloadKind, PolicyChange, Ptrace, Signal, Socket,
};
use crate::incident::{Incident, Suppressed};

/// The object of one event.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Payload {
    /// No object (yet): a `process_exec`, or an event its producer has not filled.
    #[default]
    Nothing,
    Exit(Exit),
    File(FileInfo),
    Network(Network),
    /// A DNS message: the packet's endpoints and what it says (boxed: DNS events are few and
    /// the pair is the largest object).
    Dns(Box<(Network, Dns)>),
    Module(Module),
    Bpf(BpfLoad),
    Ptrace(Ptrace),
    Cred(CredChange),
    Mount(Mount),
    Namespace(NamespaceChange),
    Memfd(Memfd),
    Socket(Socket),
    Signal(Signal),
    Lost(Lost),
    Health(Health),
    Incident(Box<Incident>),
    Suppressed(Box<Suppressed>),
    Policy(PolicyChange),
}

impl Payload {
    /// Which object this is.
    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::Nothing => PayloadKind::Nothing,
            Payload::Exit(_) => PayloadKind::Exit,
            Payload::File(_) => PayloadKind::File,
            Payload::Network(_) => PayloadKind::Network,
            Payload::Dns(_) => PayloadKind::Dns,
            Payload::Module(_) => PayloadKind::Module,
            Payload::Bpf(_) => PayloadKind::Bpf,
            Payload::Ptrace(_) => PayloadKind::Ptrace,
            Payload::Cred(_) => PayloadKind::Cred,
            Payload::Mount(_) => PayloadKind::Mount,
            Payload::Namespace(_) => PayloadKind::Namespace,
            Payload::Memfd(_) => PayloadKind::Memfd,
            Payload::Socket(_) => PayloadKind::Socket,
            Payload::Signal(_) => PayloadKind::Signal,
            Payload::Lost(_) => PayloadKind::Lost,
            Payload::Health(_) => PayloadKind::Health,
            Payload::Incident(_) => PayloadKind::Incident,
            Payload::Suppressed(_) => PayloadKind::Suppressed,
            Payload::Policy(_) => PayloadKind::Policy,
        }
    }

    /// Whether an event of `kind` may carry this (every kind may carry nothing).
    pub fn fits(&self, kind: EventKind) -> bool {
        matches!(self, Payload::Nothing) || self.kind() == kind.payload()
    }
}

/// The JSON key an object is written under.
pub(crate) fn key(kind: PayloadKind) -> &'static str {
    match kind {
        PayloadKind::Nothing => "",
        PayloadKind::Exit => "exit",
        PayloadKind::File => "file",
        PayloadKind::Network | PayloadKind::Dns => "network",
        PayloadKind::Module => "module",
        PayloadKind::Bpf => "bpf",
        PayloadKind::Ptrace => "ptrace",
        PayloadKind::Cred => "cred",
        PayloadKind::Mount => "mount",
        PayloadKind::Namespace => "namespace",
        PayloadKind::Memfd => "memfd",
        PayloadKind::Socket => "socket",
        PayloadKind::Signal => "signal",
        PayloadKind::Lost => "lost",
        PayloadKind::Health => "health",
        PayloadKind::Incident => "incident",
        PayloadKind::Suppressed => "suppressed",
        PayloadKind::Policy => "policy",
    }
}

/// Getter, mutable getter and setter for each variant that holds one object (boxed or not:
/// `Borrow` and `Into` see through the box).
macro_rules! accessors {
    ($($get:ident, $get_mut:ident, $set:ident: $variant:ident($ty:ty);)*) => {
        impl Event {
            $(
                #[doc = concat!("The `", stringify!($get), "` object, on the kinds that carry it.")]
                pub fn $get(&self) -> Option<&$ty> {
                    match &self.payload {
                        Payload::$variant(v) => Some(Borrow::borrow(v)),
                        _ => None,
                    }
                }

                pub fn $get_mut(&mut self) -> Option<&mut $ty> {
                    match &mut self.payload {
                        Payload::$variant(v) => Some(BorrowMut::borrow_mut(v)),
                        _ => None,
                    }
                }

                #[track_caller]
                pub fn $set(&mut self, value: $ty) {
                    self.set_payload(Payload::$variant(value.into()));
                }
            )*
        }
    };
}

accessors! {
    exit, exit_mut, set_exit: Exit(Exit);
    file, file_mut, set_file: File(FileInfo);
    module, module_mut, set_module: Module(Module);
    bpf, bpf_mut, set_bpf: Bpf(BpfLoad);
    ptrace, ptrace_mut, set_ptrace: Ptrace(Ptrace);
    cred, cred_mut, set_cred: Cred(CredChange);
    mount, mount_mut, set_mount: Mount(Mount);
    namespace, namespace_mut, set_namespace: Namespace(NamespaceChange);
    memfd, memfd_mut, set_memfd: Memfd(Memfd);
    socket, socket_mut, set_socket: Socket(Socket);
    signal, signal_mut, set_signal: Signal(Signal);
    lost, lost_mut, set_lost: Lost(Lost);
    health, health_mut, set_health: Health(Health);
    policy, policy_mut, set_policy: Policy(PolicyChange);
    incident, incident_mut, set_incident: Incident(Incident);
    suppressed, suppressed_mut, set_suppressed: Suppressed(Suppressed);
}

impl Event {
    /// The event's object.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// Gives the event its object. Producers call the typed setters (`set_file`, …); an object
    /// the kind does not carry is a bug in the producer, caught by debug builds' tests.
    #[track_caller]
    pub fn set_payload(&mut self, payload: Payload) {
        debug_assert!(
            payload.fits(self.kind),
            "a {} event cannot carry {:?}",
            self.kind,
            payload.kind()
        );
        self.payload = payload;
    }

    /// The endpoints, on socket actions and DNS messages.
    pub fn network(&self) -> Option<&Network> {
        match &self.payload {
            Payload::Network(n) => Some(n),
            Payload::Dns(pair) => Some(&pair.0),
            _ => None,
        }
    }

    pub fn network_mut(&mut self) -> Option<&mut Network> {
        match &mut self.payload {
            Payload::Network(n) => Some(n),
            Payload::Dns(pair) => Some(&mut pair.0),
            _ => None,
        }
    }

    #[track_caller]
    pub fn set_network(&mut self, network: Network) {
        self.set_payload(Payload::Network(network));
    }

    /// The message, on `dns` events.
    pub fn dns(&self) -> Option<&Dns> {
        match &self.payload {
            Payload::Dns(pair) => Some(&pair.1),
            _ => None,
        }
    }

    /// A `dns` event's endpoints and message.
    #[track_caller]
    pub fn set_dns(&mut self, network: Network, dns: Dns) {
        self.set_payload(Payload::Dns(Box::new((network, dns))));
    }
}

impl Payload {
    /// The payload of an event of `kind` read from JSON: at most the one object its kind
    /// carries (a `dns` event's `network` and `dns`), or an error naming what does not belong.
    /// `network` and `dns` come apart (they make one object together); `others` are the other
    /// keys' objects, present or not.
    pub(crate) fn from_objects(
        kind: EventKind,
        network: Option<Network>,
        dns: Option<Dns>,
        others: impl IntoIterator<Item = Option<Payload>>,
    ) -> Result<Payload, String> {
        let dns_kind = kind.payload() == PayloadKind::Dns;
        let packet = match (network, dns) {
            (None, None) => None,
            (Some(n), None) if !dns_kind => Some(Payload::Network(n)),
            (n, d) => Some(Payload::Dns(Box::new((
                n.unwrap_or_default(),
                d.unwrap_or_default(),
            )))),
        };
        let mut found: Vec<Payload> = others.into_iter().chain([packet]).flatten().collect();
        let wanted = key(kind.payload());
        match found.len() {
            0 => Ok(Payload::Nothing),
            1 if found[0].fits(kind) => Ok(found.remove(0)),
            1 => Err(format!(
                "a {kind} event does not carry `{}`{}",
                key(found[0].kind()),
                carries(wanted)
            )),
            _ => {
                let keys: Vec<&str> = found.iter().map(|p| key(p.kind())).collect();
                Err(format!(
                    "a {kind} event carries one object, this one has {}{}",
                    keys.join(" and "),
                    carries(wanted)
                ))
            }
        }
    }
}

fn carries(key: &str) -> String {
    if key.is_empty() {
        " (it carries none)".into()
    } else {
        format!(" (it carries `{key}`)")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Process, Timestamp};

    fn event(kind: EventKind) -> Event {
        Event::new(Timestamp(0), kind, "n".into(), Arc::new(Process::default()))
    }

    #[test]
    fn every_kind_takes_its_own_object_and_no_other() {
        let all = [
            Payload::Exit(Exit::default()),
            Payload::File(FileInfo::default()),
            Payload::Network(Network::default()),
            Payload::Dns(Box::default()),
            Payload::Module(Module::default()),
            Payload::Bpf(BpfLoad::default()),
            Payload::Ptrace(Ptrace::default()),
            Payload::Cred(CredChange::default()),
            Payload::Mount(Mount::default()),
            Payload::Namespace(NamespaceChange::default()),
            Payload::Memfd(Memfd::default()),
            Payload::Socket(Socket::default()),
            Payload::Signal(Signal::default()),
            Payload::Lost(Lost::default()),
            Payload::Health(Health::default()),
            Payload::Incident(Box::default()),
            Payload::Suppressed(Box::default()),
            Payload::Policy(PolicyChange::default()),
        ];
        for kind in EventKind::ALL {
            let fitting: Vec<_> = all.iter().filter(|p| p.fits(kind)).collect();
            if kind.payload() == PayloadKind::Nothing {
                assert!(fitting.is_empty(), "{kind}");
            } else {
                assert_eq!(fitting.len(), 1, "{kind}");
                assert_eq!(fitting[0].kind(), kind.payload());
            }
            assert!(Payload::Nothing.fits(kind));
        }
    }

    #[test]
    fn a_dns_event_has_endpoints_and_message_and_a_connect_only_endpoints() {
        let mut dns = event(EventKind::Dns);
        let n = Network {
            dport: 53,
            ..Network::default()
        };
        let d = Dns {
            query: "example.org".into(),
            ..Dns::default()
        };
        dns.set_dns(n.clone(), d.clone());
        assert_eq!(dns.network(), Some(&n));
        assert_eq!(dns.dns(), Some(&d));
        let mut connect = event(EventKind::NetConnect);
        connect.set_network(n.clone());
        assert_eq!(connect.network(), Some(&n));
        assert_eq!(connect.dns(), None);
        assert_eq!(connect.file(), None);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "a net_connect event cannot carry File")]
    fn a_producer_giving_the_wrong_object_is_caught() {
        event(EventKind::NetConnect).set_file(FileInfo::default());
    }

    #[test]
    fn objects_read_back_must_belong_to_the_kind() {
        let read = |kind, network, dns, others: Vec<Payload>| {
            Payload::from_objects(kind, network, dns, others.into_iter().map(Some))
        };
        let file = || vec![Payload::File(FileInfo::default())];
        assert!(matches!(
            read(EventKind::FileOpen, None, None, file()),
            Ok(Payload::File(_))
        ));
        let err = read(EventKind::NetConnect, None, None, file()).unwrap_err();
        assert_eq!(
            err,
            "a net_connect event does not carry `file` (it carries `network`)"
        );
        let two = vec![
            Payload::File(FileInfo::default()),
            Payload::Signal(Signal::default()),
        ];
        let err = read(EventKind::FileOpen, None, None, two).unwrap_err();
        assert_eq!(
            err,
            "a file_open event carries one object, this one has file and signal (it carries `file`)"
        );
        let err = read(EventKind::ProcessExec, None, None, file()).unwrap_err();
        assert_eq!(
            err,
            "a process_exec event does not carry `file` (it carries none)"
        );
        let (n, d) = (Some(Network::default()), Some(Dns::default()));
        assert!(matches!(
            read(EventKind::Dns, n.clone(), d, vec![]),
            Ok(Payload::Dns(_))
        ));
        assert!(matches!(
            read(EventKind::NetConnect, n, None, vec![]),
            Ok(Payload::Network(_))
        ));
    }
}
