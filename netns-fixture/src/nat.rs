//! A router's firewall and NAT, installed over nf_tables netlink.
//!
//! A [`Firewall`] becomes a table `netns_fixture` per address family — `ip`, and
//! `ip6` where rules need it — with up to three base chains: `prerouting` (port
//! forwards), `postrouting` (masquerades) and `forward` (the forward policy and
//! rules). The messages are encoded here by hand (`nlmsghdr`, `nfgenmsg`, nested
//! attributes) with the same expressions `nft` 1.0 emits for the equivalent rules,
//! so `nft list ruleset` shows ordinary nft syntax, and they go to the kernel as one
//! batch, so it installs all of it or none.
//!
//! Families: a rule whose addresses are IPv4 goes into `ip`, IPv6 into `ip6`, a rule
//! without addresses into both; a port forward follows the family of its target; a
//! `Drop` forward policy applies to both families.

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr as NetlinkAddr};
use netns_fixture_topology::{
    CtStates, Firewall, ForwardRule, InterfaceMatch, IpNet, Masquerade, PortForward, Protocol,
    Verdict,
};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Mutex, PoisonError};

/// The name of the table(s) [`Netfilter::apply`] manages.
pub const TABLE: &str = "netns_fixture";

// Netlink and nf_tables uAPI values (linux/netlink.h, linux/netfilter/nfnetlink.h,
// linux/netfilter/nf_tables.h, linux/netfilter/nf_nat.h).
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
const NFTA_NAT_FLAGS: u16 = 7;

const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_REG_2: u32 = 2;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_L4PROTO: u32 = 16;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_CT_STATE: u32 = 0;
const NFT_NAT_DNAT: u32 = 1;
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 0x2;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

/// `ct state` bits: `NF_CT_STATE_BIT(IP_CT_ESTABLISHED)` and friends.
const CT_ESTABLISHED: u32 = 1 << 1;
const CT_RELATED: u32 = 1 << 2;
const CT_NEW: u32 = 1 << 3;

/// `IFNAMSIZ`: nft compares interface names as 16 zero-padded bytes.
const IFNAMSIZ: usize = 16;

/// Receive timeout: the kernel answers a batch while `send` runs, so this only
/// guards against a reply that never comes.
const ACK_TIMEOUT_SECS: libc::time_t = 10;

/// A `NETLINK_NETFILTER` socket bound to the network namespace of the thread that
/// opened it.
///
/// ```ignore
/// // Crate-internal (`nat` is private); needs CAP_NET_ADMIN.
/// use netns_fixture_topology::{Firewall, Masquerade};
/// let netfilter = Netfilter::open()?; // in the node's namespace
/// let firewall = Firewall::default().masquerade(Masquerade::all().out_interface("wan0"));
/// netfilter.apply(&firewall)?;
/// ```
#[derive(Debug)]
pub struct Netfilter {
    socket: Socket,
    /// The sequence number of the next message; the lock also keeps one batch's
    /// send and acknowledgements together.
    next_seq: Mutex<u32>,
}

impl Netfilter {
    /// Opens the socket in the calling thread's network namespace (it stays there,
    /// whichever thread uses it later).
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.connect(&NetlinkAddr::new(0, 0))?;
        // Best effort: the kernel's own explanation with an error, and acks that do
        // not echo the whole request back.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        let timeout = libc::timeval {
            tv_sec: ACK_TIMEOUT_SECS,
            tv_usec: 0,
        };
        setsockopt(&socket, libc::SO_RCVTIMEO, &timeout)?;
        Ok(Netfilter {
            socket,
            next_seq: Mutex::new(1),
        })
    }

    /// Creates table(s) `netns_fixture` with the chains and rules for `firewall`,
    /// in one atomic batch that first removes whatever an earlier `apply` installed
    /// (so applying [`Firewall::default()`] removes the tables). On error nothing
    /// has changed: an invalid firewall is refused before anything is sent, and a
    /// batch the kernel refuses is rolled back whole.
    pub fn apply(&self, firewall: &Firewall) -> Result<(), NftError> {
        let tables = plan(firewall)?;
        self.send_batch(&tables)
    }

    fn send_batch(&self, tables: &[Table]) -> Result<(), NftError> {
        let mut next_seq = self.next_seq.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = Batch::build(tables, *next_seq);
        *next_seq = batch.end_seq.wrapping_add(1);
        self.reserve_buffers(batch.writer.buf.len(), batch.targets.len());
        self.socket
            .send(&batch.writer.buf, 0)
            .map_err(|e| NftError::io("sending the nf_tables batch", e))?;
        self.read_acks(&batch)
    }

    /// Grows the socket buffers for large batches: the whole batch is one datagram,
    /// and the kernel queues every acknowledgement before `send` returns.
    fn reserve_buffers(&self, batch_len: usize, acks: usize) {
        // An ack is small but takes up to ~1 KiB of receive buffer (skb overhead);
        // without this, 2000 rules overrun the default buffers (tested).
        for (option, force, wanted) in [
            (libc::SO_SNDBUF, libc::SO_SNDBUFFORCE, batch_len + 64 * 1024),
            (
                libc::SO_RCVBUF,
                libc::SO_RCVBUFFORCE,
                acks * 1024 + 64 * 1024,
            ),
        ] {
            let current = getsockopt_int(&self.socket, option).unwrap_or(0);
            // The kernel reports (and uses) twice the value set.
            if current < wanted {
                let value = wanted.div_ceil(2).min(i32::MAX as usize) as libc::c_int;
                if setsockopt(&self.socket, force, &value).is_err() {
                    let _ = setsockopt(&self.socket, option, &value);
                }
            }
        }
    }

    /// Reads one ack per message of `batch` and returns the first error, by message
    /// order: later errors are usually consequences of the first.
    fn read_acks(&self, batch: &Batch) -> Result<(), NftError> {
        let mut answered = vec![false; batch.targets.len()];
        let mut pending = answered.len();
        let mut first_error: Option<(usize, i32, Option<String>)> = None;
        while pending > 0 {
            let (buf, _) = self.socket.recv_from_full().map_err(|e| {
                let context = match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
                        "waiting for nf_tables to acknowledge the batch ({pending} of {} \
                         messages unanswered after {ACK_TIMEOUT_SECS}s)",
                        answered.len()
                    ),
                    _ if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        "reading nf_tables acknowledgements (some were lost: the batch may \
                         or may not have been applied)"
                            .into()
                    }
                    _ => "reading nf_tables acknowledgements".into(),
                };
                NftError::io(context, e)
            })?;
            for ack in parse_acks(&buf) {
                if ack.seq == batch.begin_seq || ack.seq == batch.end_seq {
                    if ack.errno != 0 {
                        return Err(NftError::refused(&Target::Batch, ack.errno, ack.message));
                    }
                    continue;
                }
                let index = ack.seq.wrapping_sub(batch.begin_seq.wrapping_add(1)) as usize;
                // Anything else is a late answer to an earlier, failed batch.
                if index >= answered.len() {
                    continue;
                }
                if !answered[index] {
                    answered[index] = true;
                    pending -= 1;
                }
                if ack.errno != 0 && first_error.as_ref().is_none_or(|(i, _, _)| index < *i) {
                    first_error = Some((index, ack.errno, ack.message));
                }
            }
        }
        match first_error {
            Some((index, errno, message)) => {
                Err(NftError::refused(&batch.targets[index], errno, message))
            }
            None => Ok(()),
        }
    }
}

fn setsockopt<T>(socket: &Socket, option: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(socket: &Socket, option: libc::c_int) -> io::Result<usize> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and `len` is the size of `value`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value.max(0) as usize)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Renders what [`Netfilter::apply`] installs, in the syntax `nft list ruleset`
/// prints it (without the counters' values), for docs, error messages and failure
/// reports. Empty if the firewall installs nothing; a firewall `apply` would refuse
/// renders as an nft comment saying why.
///
/// For the `two_servers` router's masquerade and first port forward, with policy
/// drop:
///
/// ```text
/// table ip netns_fixture {
///     chain prerouting {
///         type nat hook prerouting priority dstnat; policy accept;
///         iifname "ens5" tcp dport 6000 counter dnat to 192.168.0.2:8080
///     }
///
///     chain postrouting {
///         type nat hook postrouting priority srcnat; policy accept;
///         ip saddr 192.168.0.0/24 oifname "ens5" counter masquerade
///     }
///
///     chain forward {
///         type filter hook forward priority filter; policy drop;
///     }
/// }
/// table ip6 netns_fixture {
///     chain forward {
///         type filter hook forward priority filter; policy drop;
///     }
/// }
/// ```
///
/// (nft indents with tabs, and so does `render`.)
pub fn render(firewall: &Firewall) -> String {
    match plan(firewall) {
        Ok(tables) => tables.iter().map(Table::to_string).collect(),
        Err(e) => format!("# {e}\n"),
    }
}

/// Why [`Netfilter::apply`] failed. Whatever the variant, the namespace's firewall
/// is as it was before the call.
#[derive(Debug)]
#[non_exhaustive]
pub enum NftError {
    /// The firewall cannot be expressed in nf_tables; nothing was sent.
    Invalid {
        /// The offending item, e.g. `forward rule 2` (numbered from 1).
        item: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The kernel refused a message of the batch, so it applied none of it.
    Refused {
        /// The table concerned, e.g. `ip netns_fixture`; `None` if the kernel
        /// refused the batch as a whole.
        table: Option<String>,
        /// The chain concerned, if a chain or rule was refused.
        chain: Option<String>,
        /// The refused rule in nft syntax, if a rule was refused.
        rule: Option<String>,
        /// The kernel's error number (positive, e.g. `libc::EOPNOTSUPP`).
        errno: i32,
        /// The kernel's own explanation (extended ack), if it gave one.
        kernel_message: Option<String>,
    },
    /// Talking to the kernel failed.
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: io::Error,
    },
}

impl NftError {
    fn invalid(item: String, reason: String) -> Self {
        NftError::Invalid { item, reason }
    }

    fn io(context: impl Into<String>, source: io::Error) -> Self {
        NftError::Io {
            context: context.into(),
            source,
        }
    }

    fn refused(target: &Target, errno: i32, kernel_message: Option<String>) -> Self {
        let (table, chain, rule) = match target {
            Target::Batch => (None, None, None),
            Target::Table(family) => (Some(family.table()), None, None),
            Target::Chain(family, hook) => (Some(family.table()), Some(hook.name()), None),
            Target::Rule(family, hook, rule) => {
                (Some(family.table()), Some(hook.name()), Some(rule.clone()))
            }
        };
        NftError::Refused {
            table,
            chain: chain.map(String::from),
            rule,
            errno,
            kernel_message,
        }
    }
}

impl fmt::Display for NftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NftError::Invalid { item, reason } => {
                write!(f, "cannot express {item} in nf_tables: {reason}")
            }
            NftError::Refused {
                table,
                chain,
                rule,
                errno,
                kernel_message,
            } => {
                f.write_str("nf_tables refused ")?;
                match (table, chain, rule) {
                    (Some(t), Some(c), Some(r)) => {
                        write!(f, "rule `{r}` in chain {c} of table {t}")?
                    }
                    (Some(t), Some(c), None) => write!(f, "chain {c} of table {t}")?,
                    (Some(t), None, _) => write!(f, "table {t}")?,
                    (None, ..) => f.write_str("the batch")?,
                }
                write!(f, ": {}", describe_errno(*errno))?;
                if let Some(message) = kernel_message {
                    write!(f, " (kernel: {message})")?;
                }
                if *errno == libc::EPERM {
                    f.write_str(
                        "; changing the firewall needs CAP_NET_ADMIN in the namespace \
                         (run the tests as root)",
                    )?;
                }
                Ok(())
            }
            NftError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for NftError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NftError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `Operation not supported (EOPNOTSUPP)`.
fn describe_errno(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::E2BIG => "E2BIG",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ELOOP => "ELOOP",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENOBUFS => "ENOBUFS",
        _ => return format!("{text} (errno {errno})"),
    };
    format!("{text} ({name})")
}

// ---------------------------------------------------------------------------
// The plan: tables, chains and rules, independent of the wire format.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Ip,
    Ip6,
}

impl Family {
    const ALL: [Family; 2] = [Family::Ip, Family::Ip6];

    fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ip,
            IpAddr::V6(_) => Family::Ip6,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
        }
    }

    fn nfproto(self) -> u8 {
        match self {
            Family::Ip => NFPROTO_IPV4,
            Family::Ip6 => NFPROTO_IPV6,
        }
    }

    /// `ip netns_fixture`, as nft names a table.
    fn table(self) -> String {
        format!("{} {TABLE}", self.name())
    }
}

/// A base chain, named after its hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    Prerouting,
    Postrouting,
    Forward,
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Postrouting => "postrouting",
            Hook::Forward => "forward",
        }
    }

    fn chain_type(self) -> &'static str {
        match self {
            Hook::Prerouting | Hook::Postrouting => "nat",
            Hook::Forward => "filter",
        }
    }

    /// `NF_INET_*`.
    fn number(self) -> u32 {
        match self {
            Hook::Prerouting => 0,
            Hook::Forward => 2,
            Hook::Postrouting => 4,
        }
    }

    /// The standard priority, numeric and as nft names it.
    fn priority(self) -> (i32, &'static str) {
        match self {
            Hook::Prerouting => (-100, "dstnat"),
            Hook::Postrouting => (100, "srcnat"),
            Hook::Forward => (0, "filter"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    family: Family,
    chains: Vec<Chain>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Chain {
    hook: Hook,
    policy: Verdict,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    matches: Vec<Match>,
    action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Match {
    Interface {
        output: bool,
        name: String,
        negated: bool,
    },
    /// `net` has its host bits cleared.
    Address {
        destination: bool,
        net: IpNet,
    },
    Protocol {
        protocol: Protocol,
        destination_port: Option<u16>,
    },
    CtState(CtStates),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Verdict(Verdict),
    Dnat(SocketAddr),
    Masquerade,
}

/// Checks `firewall` and sorts its rules into tables and chains.
fn plan(firewall: &Firewall) -> Result<Vec<Table>, NftError> {
    // Per family: prerouting, postrouting and forward rules.
    let mut rules: [[Vec<Rule>; 3]; 2] = Default::default();
    let slot = |family: Family| match family {
        Family::Ip => 0,
        Family::Ip6 => 1,
    };
    for (i, forward) in firewall.port_forwards.iter().enumerate() {
        let rule = port_forward_rule(forward)
            .map_err(|reason| NftError::invalid(format!("port forward {}", i + 1), reason))?;
        rules[slot(Family::of(forward.to.ip()))][0].push(rule);
    }
    for (i, masquerade) in firewall.masquerades.iter().enumerate() {
        let (families, rule) = masquerade_rule(masquerade)
            .map_err(|reason| NftError::invalid(format!("masquerade {}", i + 1), reason))?;
        for family in families {
            rules[slot(family)][1].push(rule.clone());
        }
    }
    for (i, forward) in firewall.forward_rules.iter().enumerate() {
        let (families, rule) = forward_rule(forward)
            .map_err(|reason| NftError::invalid(format!("forward rule {}", i + 1), reason))?;
        for family in families {
            rules[slot(family)][2].push(rule.clone());
        }
    }
    let mut tables = Vec::new();
    for (family, [pre, post, forward]) in Family::ALL.into_iter().zip(rules) {
        let mut chains = Vec::new();
        for (hook, rules) in [(Hook::Prerouting, pre), (Hook::Postrouting, post)] {
            if !rules.is_empty() {
                chains.push(Chain {
                    hook,
                    policy: Verdict::Accept,
                    rules,
                });
            }
        }
        if !forward.is_empty() || firewall.forward_policy != Verdict::Accept {
            chains.push(Chain {
                hook: Hook::Forward,
                policy: firewall.forward_policy,
                rules: forward,
            });
        }
        if !chains.is_empty() {
            tables.push(Table { family, chains });
        }
    }
    Ok(tables)
}

fn port_forward_rule(forward: &PortForward) -> Result<Rule, String> {
    let mut matches = Vec::new();
    if let Some(name) = &forward.in_interface {
        matches.push(interface_match(false, &InterfaceMatch::Is(name.clone()))?);
    }
    matches.push(Match::Protocol {
        protocol: forward.protocol,
        destination_port: Some(forward.port),
    });
    Ok(Rule {
        matches,
        action: Action::Dnat(forward.to),
    })
}

fn masquerade_rule(masquerade: &Masquerade) -> Result<(Vec<Family>, Rule), String> {
    let mut matches = Vec::new();
    if let Some(source) = masquerade.source {
        matches.push(Match::Address {
            destination: false,
            net: source.network(),
        });
    }
    if let Some(out) = &masquerade.out_interface {
        matches.push(interface_match(true, out)?);
    }
    let families = match masquerade.source {
        Some(source) => vec![Family::of(source.addr)],
        None => Family::ALL.to_vec(),
    };
    let rule = Rule {
        matches,
        action: Action::Masquerade,
    };
    Ok((families, rule))
}

fn forward_rule(forward: &ForwardRule) -> Result<(Vec<Family>, Rule), String> {
    let mut matches = Vec::new();
    if let Some(inbound) = &forward.in_interface {
        matches.push(interface_match(false, inbound)?);
    }
    if let Some(out) = &forward.out_interface {
        matches.push(interface_match(true, out)?);
    }
    for (destination, net) in [(false, forward.source), (true, forward.destination)] {
        if let Some(net) = net {
            matches.push(Match::Address {
                destination,
                net: net.network(),
            });
        }
    }
    let families = match (forward.source, forward.destination) {
        (Some(s), Some(d)) if s.addr.is_ipv4() != d.addr.is_ipv4() => {
            return Err(format!(
                "source {s} and destination {d} are of different address families"
            ))
        }
        (Some(net), _) | (None, Some(net)) => vec![Family::of(net.addr)],
        (None, None) => Family::ALL.to_vec(),
    };
    match (forward.protocol, forward.destination_port) {
        (Some(protocol), destination_port) => matches.push(Match::Protocol {
            protocol,
            destination_port,
        }),
        (None, Some(port)) => {
            return Err(format!(
                "destination port {port} needs a protocol (set `protocol` to tcp or udp)"
            ))
        }
        (None, None) => {}
    }
    if let Some(states) = forward.ct_states {
        if !(states.new || states.established || states.related) {
            return Err("ct_states has no state set, so the rule would match nothing".into());
        }
        matches.push(Match::CtState(states));
    }
    let rule = Rule {
        matches,
        action: Action::Verdict(forward.verdict),
    };
    Ok((families, rule))
}

fn interface_match(output: bool, interface: &InterfaceMatch) -> Result<Match, String> {
    let name = interface.name();
    if name.is_empty() {
        return Err("an interface name is empty".into());
    }
    if name.len() >= IFNAMSIZ {
        return Err(format!(
            "interface name `{name}` is {} bytes; Linux allows at most {}",
            name.len(),
            IFNAMSIZ - 1
        ));
    }
    if name
        .bytes()
        .any(|b| b == 0 || b == b'/' || b == b':' || b.is_ascii_whitespace())
    {
        return Err(format!(
            "interface name `{}` contains a character Linux does not allow (NUL, `/`, `:` or \
             whitespace)",
            name.escape_debug()
        ));
    }
    Ok(Match::Interface {
        output,
        name: name.into(),
        negated: matches!(interface, InterfaceMatch::IsNot(_)),
    })
}

// ---------------------------------------------------------------------------
// Rendering, as `nft list ruleset` prints it.

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "table {} {{", self.family.table())?;
        for (i, chain) in self.chains.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let (_, priority) = chain.hook.priority();
            writeln!(f, "\tchain {} {{", chain.hook.name())?;
            writeln!(
                f,
                "\t\ttype {} hook {} priority {priority}; policy {};",
                chain.hook.chain_type(),
                chain.hook.name(),
                verdict_name(chain.policy)
            )?;
            for rule in &chain.rules {
                writeln!(f, "\t\t{rule}")?;
            }
            writeln!(f, "\t}}")?;
        }
        writeln!(f, "}}")
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        f.write_str("counter ")?;
        match &self.action {
            Action::Verdict(v) => f.write_str(verdict_name(*v)),
            Action::Dnat(SocketAddr::V4(to)) => write!(f, "dnat to {}:{}", to.ip(), to.port()),
            Action::Dnat(SocketAddr::V6(to)) => write!(f, "dnat to [{}]:{}", to.ip(), to.port()),
            Action::Masquerade => f.write_str("masquerade"),
        }
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Interface {
                output,
                name,
                negated,
            } => {
                let key = if *output { "oifname" } else { "iifname" };
                let op = if *negated { "!= " } else { "" };
                write!(f, "{key} {op}\"{name}\"")
            }
            Match::Address { destination, net } => {
                let family = Family::of(net.addr).name();
                let field = if *destination { "daddr" } else { "saddr" };
                write!(f, "{family} {field} {}", net.addr)?;
                if net.prefix < address_bytes(net.addr).len() as u8 * 8 {
                    write!(f, "/{}", net.prefix)?;
                }
                Ok(())
            }
            Match::Protocol {
                protocol,
                destination_port: Some(port),
            } => write!(f, "{protocol} dport {port}"),
            Match::Protocol {
                protocol,
                destination_port: None,
            } => write!(f, "meta l4proto {protocol}"),
            Match::CtState(states) => {
                let names: Vec<&str> = [
                    (states.established, "established"),
                    (states.related, "related"),
                    (states.new, "new"),
                ]
                .into_iter()
                .filter_map(|(set, name)| set.then_some(name))
                .collect();
                write!(f, "ct state {}", names.join(","))
            }
        }
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Accept => "accept",
        Verdict::Drop => "drop",
    }
}

fn address_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

// ---------------------------------------------------------------------------
// Wire format.

/// What a message of a batch creates, to name it when the kernel refuses it.
#[derive(Debug, Clone)]
enum Target {
    Batch,
    Table(Family),
    Chain(Family, Hook),
    Rule(Family, Hook, String),
}

/// A complete batch: `BATCH_BEGIN`, one message per target (each with its own
/// sequence number and `NLM_F_ACK`), `BATCH_END`.
struct Batch {
    writer: Writer,
    begin_seq: u32,
    end_seq: u32,
    /// `targets[i]` is the message with sequence number `begin_seq + 1 + i`.
    targets: Vec<Target>,
}

impl Batch {
    fn build(tables: &[Table], first_seq: u32) -> Batch {
        let mut batch = Batch {
            writer: Writer::default(),
            begin_seq: first_seq,
            end_seq: first_seq,
            targets: Vec::new(),
        };
        batch.marker(NFNL_MSG_BATCH_BEGIN, first_seq);
        // "add table; delete table" removes an earlier apply's table, if any.
        for family in Family::ALL {
            batch.table(NFT_MSG_NEWTABLE, family);
            batch.table(NFT_MSG_DELTABLE, family);
        }
        for table in tables {
            let family = table.family;
            batch.table(NFT_MSG_NEWTABLE, family);
            for chain in &table.chains {
                let target = Target::Chain(family, chain.hook);
                batch.message(target, family, NFT_MSG_NEWCHAIN, NLM_F_CREATE, |w| {
                    encode_chain(w, chain)
                });
            }
            for chain in &table.chains {
                for rule in &chain.rules {
                    let target = Target::Rule(family, chain.hook, rule.to_string());
                    // Without NLM_F_APPEND the kernel inserts at the head of the chain.
                    let flags = NLM_F_CREATE | NLM_F_APPEND;
                    batch.message(target, family, NFT_MSG_NEWRULE, flags, |w| {
                        w.put_str(NFTA_RULE_TABLE, TABLE);
                        w.put_str(NFTA_RULE_CHAIN, chain.hook.name());
                        w.nest(NFTA_RULE_EXPRESSIONS, |w| encode_rule(w, family, rule));
                    });
                }
            }
        }
        batch.end_seq = batch.next_seq();
        batch.marker(NFNL_MSG_BATCH_END, batch.end_seq);
        batch
    }

    fn next_seq(&self) -> u32 {
        self.begin_seq
            .wrapping_add(self.targets.len() as u32)
            .wrapping_add(1)
    }

    fn marker(&mut self, kind: u16, seq: u32) {
        let start = self
            .writer
            .begin(kind, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES);
        self.writer.end(start);
    }

    fn table(&mut self, kind: u16, family: Family) {
        let flags = if kind == NFT_MSG_NEWTABLE {
            NLM_F_CREATE
        } else {
            0
        };
        self.message(Target::Table(family), family, kind, flags, |w| {
            w.put_str(NFTA_TABLE_NAME, TABLE)
        });
    }

    fn message(
        &mut self,
        target: Target,
        family: Family,
        kind: u16,
        flags: u16,
        body: impl FnOnce(&mut Writer),
    ) {
        let start = self.writer.begin(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            self.next_seq(),
            family.nfproto(),
            0,
        );
        body(&mut self.writer);
        self.writer.end(start);
        self.targets.push(target);
    }
}

fn encode_chain(w: &mut Writer, chain: &Chain) {
    let (priority, _) = chain.hook.priority();
    w.put_str(NFTA_CHAIN_TABLE, TABLE);
    w.put_str(NFTA_CHAIN_NAME, chain.hook.name());
    w.nest(NFTA_CHAIN_HOOK, |w| {
        w.put_u32(NFTA_HOOK_HOOKNUM, chain.hook.number());
        w.put_u32(NFTA_HOOK_PRIORITY, priority as u32);
    });
    w.put_u32(NFTA_CHAIN_POLICY, verdict_code(chain.policy));
    w.put_str(NFTA_CHAIN_TYPE, chain.hook.chain_type());
}

fn verdict_code(verdict: Verdict) -> u32 {
    match verdict {
        Verdict::Accept => NF_ACCEPT,
        Verdict::Drop => NF_DROP,
    }
}

/// The rule's expressions, as nft emits them for the rendered rule.
fn encode_rule(w: &mut Writer, family: Family, rule: &Rule) {
    for m in &rule.matches {
        match m {
            Match::Interface {
                output,
                name,
                negated,
            } => {
                let key = if *output {
                    NFT_META_OIFNAME
                } else {
                    NFT_META_IIFNAME
                };
                meta(w, key);
                let mut padded = [0u8; IFNAMSIZ];
                padded[..name.len()].copy_from_slice(name.as_bytes());
                cmp(w, if *negated { NFT_CMP_NEQ } else { NFT_CMP_EQ }, &padded);
            }
            Match::Address { destination, net } => address(w, *destination, net),
            Match::Protocol {
                protocol,
                destination_port,
            } => {
                meta(w, NFT_META_L4PROTO);
                cmp(w, NFT_CMP_EQ, &[protocol.number()]);
                if let Some(port) = destination_port {
                    payload(w, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
                    cmp(w, NFT_CMP_EQ, &port.to_be_bytes());
                }
            }
            Match::CtState(states) => {
                let mut mask = 0;
                for (set, bit) in [
                    (states.new, CT_NEW),
                    (states.established, CT_ESTABLISHED),
                    (states.related, CT_RELATED),
                ] {
                    if set {
                        mask |= bit;
                    }
                }
                expr(w, "ct", |w| {
                    w.put_u32(NFTA_CT_DREG, NFT_REG_1);
                    w.put_u32(NFTA_CT_KEY, NFT_CT_STATE);
                });
                // The state is a host-order u32 in the register.
                bitwise(w, &mask.to_ne_bytes(), &[0; 4]);
                cmp(w, NFT_CMP_NEQ, &[0; 4]);
            }
        }
    }
    expr(w, "counter", |_| {});
    match &rule.action {
        Action::Verdict(verdict) => expr(w, "immediate", |w| {
            w.put_u32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
            w.nest(NFTA_IMMEDIATE_DATA, |w| {
                w.nest(NFTA_DATA_VERDICT, |w| {
                    w.put_u32(NFTA_VERDICT_CODE, verdict_code(*verdict))
                })
            });
        }),
        Action::Dnat(to) => {
            immediate(w, NFT_REG_1, &address_bytes(to.ip()));
            immediate(w, NFT_REG_2, &to.port().to_be_bytes());
            expr(w, "nat", |w| {
                w.put_u32(NFTA_NAT_TYPE, NFT_NAT_DNAT);
                w.put_u32(NFTA_NAT_FAMILY, u32::from(family.nfproto()));
                w.put_u32(NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
                w.put_u32(NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
                w.put_u32(NFTA_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
            });
        }
        Action::Masquerade => expr(w, "masq", |_| {}),
    }
}

/// `ip saddr 192.168.0.0/24` like nft: a byte-aligned prefix loads only its bytes,
/// any other prefix loads the whole address and masks it.
fn address(w: &mut Writer, destination: bool, net: &IpNet) {
    let bytes = address_bytes(net.addr);
    let offset = match (net.addr, destination) {
        (IpAddr::V4(_), false) => 12,
        (IpAddr::V4(_), true) => 16,
        (IpAddr::V6(_), false) => 8,
        (IpAddr::V6(_), true) => 24,
    };
    let prefix = usize::from(net.prefix);
    if prefix > 0 && prefix % 8 == 0 {
        let len = prefix / 8;
        payload(w, NFT_PAYLOAD_NETWORK_HEADER, offset, len as u32);
        cmp(w, NFT_CMP_EQ, &bytes[..len]);
    } else {
        let mask: Vec<u8> = (0..bytes.len())
            .map(|i| {
                let bits = prefix.saturating_sub(i * 8).min(8);
                (0xff_u16 << (8 - bits)) as u8
            })
            .collect();
        payload(w, NFT_PAYLOAD_NETWORK_HEADER, offset, bytes.len() as u32);
        bitwise(w, &mask, &vec![0; bytes.len()]);
        cmp(w, NFT_CMP_EQ, &bytes);
    }
}

fn expr(w: &mut Writer, name: &str, data: impl FnOnce(&mut Writer)) {
    w.nest(NFTA_LIST_ELEM, |w| {
        w.put_str(NFTA_EXPR_NAME, name);
        w.nest(NFTA_EXPR_DATA, data);
    });
}

fn meta(w: &mut Writer, key: u32) {
    expr(w, "meta", |w| {
        w.put_u32(NFTA_META_KEY, key);
        w.put_u32(NFTA_META_DREG, NFT_REG_1);
    });
}

fn payload(w: &mut Writer, base: u32, offset: u32, len: u32) {
    expr(w, "payload", |w| {
        w.put_u32(NFTA_PAYLOAD_DREG, NFT_REG_1);
        w.put_u32(NFTA_PAYLOAD_BASE, base);
        w.put_u32(NFTA_PAYLOAD_OFFSET, offset);
        w.put_u32(NFTA_PAYLOAD_LEN, len);
    });
}

fn cmp(w: &mut Writer, op: u32, data: &[u8]) {
    expr(w, "cmp", |w| {
        w.put_u32(NFTA_CMP_SREG, NFT_REG_1);
        w.put_u32(NFTA_CMP_OP, op);
        w.nest(NFTA_CMP_DATA, |w| w.put(NFTA_DATA_VALUE, data));
    });
}

fn bitwise(w: &mut Writer, mask: &[u8], xor: &[u8]) {
    expr(w, "bitwise", |w| {
        w.put_u32(NFTA_BITWISE_SREG, NFT_REG_1);
        w.put_u32(NFTA_BITWISE_DREG, NFT_REG_1);
        w.put_u32(NFTA_BITWISE_LEN, mask.len() as u32);
        w.nest(NFTA_BITWISE_MASK, |w| w.put(NFTA_DATA_VALUE, mask));
        w.nest(NFTA_BITWISE_XOR, |w| w.put(NFTA_DATA_VALUE, xor));
    });
}

fn immediate(w: &mut Writer, register: u32, data: &[u8]) {
    expr(w, "immediate", |w| {
        w.put_u32(NFTA_IMMEDIATE_DREG, register);
        w.nest(NFTA_IMMEDIATE_DATA, |w| w.put(NFTA_DATA_VALUE, data));
    });
}

/// Appends netlink messages and attributes to a buffer.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts a message: `nlmsghdr` (length patched by [`Writer::end`]) and
    /// `nfgenmsg`. Returns the message's start.
    fn begin(&mut self, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        // nfgenmsg: family, version (NFNETLINK_V0), res_id (big-endian).
        self.buf.push(family);
        self.buf.push(0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    fn end(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn put(&mut self, kind: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn put_str(&mut self, kind: u16, s: &str) {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.put(kind, &data);
    }

    /// nf_tables integers are big-endian.
    fn put_u32(&mut self, kind: u16, value: u32) {
        self.put(kind, &value.to_be_bytes());
    }

    fn nest(&mut self, kind: u16, body: impl FnOnce(&mut Writer)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 2]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        body(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

/// An `NLMSG_ERROR` reply: an ack (`errno` 0) or an error for message `seq`.
struct Ack {
    seq: u32,
    errno: i32,
    message: Option<String>,
}

fn parse_acks(buf: &[u8]) -> Vec<Ack> {
    let u16_at = |b: &[u8], at: usize| u16::from_ne_bytes([b[at], b[at + 1]]);
    let u32_at = |b: &[u8], at: usize| u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let mut acks = Vec::new();
    let mut offset = 0;
    while offset + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, offset) as usize;
        if len < NLMSG_HDRLEN || offset + len > buf.len() {
            break;
        }
        let message = &buf[offset..offset + len];
        offset += len.next_multiple_of(4);
        if u16_at(message, 4) != NLMSG_ERROR || len < NLMSG_HDRLEN + 4 + NLMSG_HDRLEN {
            continue;
        }
        let flags = u16_at(message, 6);
        let seq = u32_at(message, 8);
        let errno = -(u32_at(message, NLMSG_HDRLEN) as i32);
        // After the error code: the request's header, its payload unless capped,
        // then extended-ack attributes.
        let request = NLMSG_HDRLEN + 4;
        let mut tlvs = request + NLMSG_HDRLEN;
        if flags & NLM_F_CAPPED == 0 {
            tlvs = request + (u32_at(message, request) as usize).next_multiple_of(4);
        }
        let mut text = None;
        while flags & NLM_F_ACK_TLVS != 0 && tlvs + 4 <= message.len() {
            let attr_len = usize::from(u16_at(message, tlvs));
            if attr_len < 4 || tlvs + attr_len > message.len() {
                break;
            }
            if u16_at(message, tlvs + 2) & !NLA_F_NESTED == NLMSGERR_ATTR_MSG {
                let raw = &message[tlvs + 4..tlvs + attr_len];
                let raw = raw.split(|&b| b == 0).next().unwrap_or(raw);
                text = Some(String::from_utf8_lossy(raw).into_owned());
            }
            tlvs += attr_len.next_multiple_of(4);
        }
        acks.push(Ack {
            seq,
            errno,
            message: text,
        });
    }
    acks
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::fs::File;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::process::Command;
    use std::time::Duration;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// The firewall of the module docs' example.
    fn example() -> Firewall {
        Firewall::default()
            .forward_policy(Verdict::Drop)
            .port_forward(
                PortForward::new(Protocol::Tcp, 6000, "192.168.0.2:8080".parse().unwrap())
                    .in_interface("ens5"),
            )
            .masquerade(Masquerade::from_network(net("192.168.0.0/24")).out_interface("ens5"))
            .masquerade(Masquerade::from_network(net("192.168.0.0/24")).out_interface_not("br0"))
            .forward(
                ForwardRule::accept()
                    .in_interface("ens5")
                    .out_interface("veth0"),
            )
            .forward(
                ForwardRule::accept()
                    .destination(net("192.168.1.2/32"))
                    .protocol(Protocol::Tcp)
                    .destination_port(8080)
                    .ct_states(CtStates::NEW_ESTABLISHED_RELATED),
            )
    }

    const EXAMPLE: &str = r#"table ip netns_fixture {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "ens5" tcp dport 6000 counter dnat to 192.168.0.2:8080
	}

	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 192.168.0.0/24 oifname "ens5" counter masquerade
		ip saddr 192.168.0.0/24 oifname != "br0" counter masquerade
	}

	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "ens5" oifname "veth0" counter accept
		ip daddr 192.168.1.2 tcp dport 8080 ct state established,related,new counter accept
	}
}
table ip6 netns_fixture {
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "ens5" oifname "veth0" counter accept
	}
}
"#;

    /// Every kind of match and action, in both families.
    fn everything() -> Firewall {
        Firewall::default()
            .port_forward(PortForward::new(
                Protocol::Udp,
                53,
                "10.9.8.7:5353".parse().unwrap(),
            ))
            .port_forward(
                PortForward::new(Protocol::Tcp, 6001, "[fd00::2]:8080".parse().unwrap())
                    .in_interface("wan0"),
            )
            .masquerade(Masquerade::all())
            .masquerade(Masquerade::from_network(net("fd00:1::/64")).out_interface("wan0"))
            .masquerade(Masquerade::from_network(net("10.16.0.0/12")))
            .forward(ForwardRule::drop().source(net("10.1.2.3/31")))
            .forward(ForwardRule::accept().source(net("0.0.0.0/0")))
            .forward(
                ForwardRule::accept()
                    .source(net("fd00::/60"))
                    .destination(net("fd00:2::1/128"))
                    .protocol(Protocol::Udp),
            )
            .forward(ForwardRule::accept().destination(net("::/0")))
            .forward(ForwardRule {
                in_interface: Some(InterfaceMatch::IsNot("lan0".into())),
                ..ForwardRule::accept()
            })
            .forward(
                ForwardRule::accept()
                    .protocol(Protocol::Tcp)
                    .ct_states(CtStates::ESTABLISHED_RELATED),
            )
            .forward(ForwardRule::drop().ct_states(CtStates {
                new: true,
                ..CtStates::default()
            }))
    }

    /// Runs `f` on a new thread in a new, empty network namespace that disappears
    /// with the thread. Commands spawned by `f` run in that namespace too.
    fn in_new_netns<R: Send>(f: impl FnOnce() -> R + Send) -> R {
        std::thread::scope(|s| {
            let thread = s.spawn(|| {
                unshare_net();
                f()
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Moves the calling thread into a new network namespace and returns it.
    fn unshare_net() -> File {
        // SAFETY: no memory-safety preconditions; affects the calling thread only.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", io::Error::last_os_error());
        File::open("/proc/thread-self/ns/net").unwrap()
    }

    fn enter(ns: &File) {
        // SAFETY: `ns` is an open namespace file; affects the calling thread only.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
    }

    /// Runs `nft ARGS` in the calling thread's namespace and returns its stdout.
    fn nft(args: &[&str]) -> String {
        let out = Command::new("nft")
            .args(args)
            .output()
            .expect("running nft (apt-get install nftables)");
        assert!(
            out.status.success(),
            "nft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `nft list ruleset` without the counters' values.
    fn listed_ruleset() -> String {
        nft(&["list", "ruleset"])
            .lines()
            .map(|line| match line.find("counter packets ") {
                Some(at) => {
                    let rest = &line[at + "counter packets ".len()..];
                    // "<n> bytes <m> action..."
                    let action = rest.splitn(4, ' ').nth(3).unwrap_or("");
                    format!("{}counter {action}", &line[..at])
                }
                None => line.to_string(),
            })
            .fold(String::new(), |mut out, line| {
                writeln!(out, "{line}").unwrap();
                out
            })
    }

    /// The expressions the kernel holds, as `nft --debug=netlink` prints them,
    /// without rule handles.
    fn kernel_expressions() -> String {
        nft(&["--debug=netlink", "list", "ruleset"])
            .lines()
            .filter(|line| {
                !line.starts_with("table ") && !line.starts_with('\t') && !line.starts_with('}')
            })
            .map(|line| {
                if line.starts_with("ip") {
                    // "ip netns_fixture forward 8 7": family, table, chain, handles.
                    line.split(' ').take(3).collect::<Vec<_>>().join(" ")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn renders_like_nft_lists() {
        assert_eq!(render(&example()), EXAMPLE);
        assert_eq!(render(&Firewall::default()), "");
        let everything = render(&everything());
        for line in [
            "\t\tudp dport 53 counter dnat to 10.9.8.7:5353\n",
            "\t\tiifname \"wan0\" tcp dport 6001 counter dnat to [fd00::2]:8080\n",
            "\t\tip saddr 10.1.2.2/31 counter drop\n",
            "\t\tip saddr 0.0.0.0/0 counter accept\n",
            "\t\tip6 saddr fd00::/60 ip6 daddr fd00:2::1 meta l4proto udp counter accept\n",
            "\t\tiifname != \"lan0\" counter accept\n",
            "\t\tmeta l4proto tcp ct state established,related counter accept\n",
            "\t\tct state new counter drop\n",
        ] {
            assert!(
                everything.contains(line),
                "{line:?} missing in\n{everything}"
            );
        }
    }

    #[test]
    fn families_follow_the_addresses() {
        let tables = plan(&everything()).unwrap();
        let rules = |family: Family, hook: Hook| -> Vec<String> {
            tables
                .iter()
                .filter(|t| t.family == family)
                .flat_map(|t| &t.chains)
                .filter(|c| c.hook == hook)
                .flat_map(|c| c.rules.iter().map(Rule::to_string))
                .collect()
        };
        assert_eq!(
            rules(Family::Ip, Hook::Prerouting),
            ["udp dport 53 counter dnat to 10.9.8.7:5353"]
        );
        assert_eq!(
            rules(Family::Ip6, Hook::Prerouting),
            ["iifname \"wan0\" tcp dport 6001 counter dnat to [fd00::2]:8080"]
        );
        assert_eq!(
            rules(Family::Ip, Hook::Postrouting),
            [
                "counter masquerade",
                "ip saddr 10.16.0.0/12 counter masquerade"
            ]
        );
        assert_eq!(
            rules(Family::Ip6, Hook::Postrouting),
            [
                "counter masquerade",
                "ip6 saddr fd00:1::/64 oifname \"wan0\" counter masquerade"
            ]
        );
        assert_eq!(rules(Family::Ip, Hook::Forward).len(), 5);
        assert_eq!(rules(Family::Ip6, Hook::Forward).len(), 5);
        // Policy accept and only IPv4 rules: no ip6 table at all.
        let v4 = Firewall::default().masquerade(Masquerade::from_network(net("10.0.0.0/8")));
        assert_eq!(plan(&v4).unwrap().len(), 1);
    }

    #[test]
    fn invalid_firewalls_are_refused_before_sending() {
        let cases = [
            (
                Firewall::default().forward(
                    ForwardRule::accept()
                        .in_interface("ens5")
                        .out_interface("an-interface-name"),
                ),
                "cannot express forward rule 1 in nf_tables: interface name \
                 `an-interface-name` is 17 bytes; Linux allows at most 15",
            ),
            (
                Firewall::default().forward(
                    ForwardRule::accept()
                        .source(net("10.0.0.0/8"))
                        .destination(net("fd00::/8")),
                ),
                "cannot express forward rule 1 in nf_tables: source 10.0.0.0/8 and \
                 destination fd00::/8 are of different address families",
            ),
            (
                Firewall::default()
                    .forward(ForwardRule::accept())
                    .forward(ForwardRule::accept().destination_port(80)),
                "cannot express forward rule 2 in nf_tables: destination port 80 needs a \
                 protocol (set `protocol` to tcp or udp)",
            ),
            (
                Firewall::default().forward(ForwardRule::accept().ct_states(CtStates::default())),
                "cannot express forward rule 1 in nf_tables: ct_states has no state set, so \
                 the rule would match nothing",
            ),
            (
                Firewall::default().port_forward(
                    PortForward::new(Protocol::Tcp, 1, "10.0.0.1:2".parse().unwrap())
                        .in_interface("eth 0"),
                ),
                "cannot express port forward 1 in nf_tables: interface name `eth 0` contains \
                 a character Linux does not allow (NUL, `/`, `:` or whitespace)",
            ),
            (
                Firewall::default().masquerade(Masquerade::all().out_interface("")),
                "cannot express masquerade 1 in nf_tables: an interface name is empty",
            ),
        ];
        for (firewall, message) in cases {
            let err = plan(&firewall).unwrap_err();
            assert!(matches!(err, NftError::Invalid { .. }), "{err:?}");
            assert_eq!(err.to_string(), message);
            assert_eq!(render(&firewall), format!("# {message}\n"));
        }
        // Through `apply` too, and nothing reaches the kernel.
        in_new_netns(|| {
            let netfilter = Netfilter::open().unwrap();
            let long =
                Firewall::default().masquerade(Masquerade::all().out_interface("sixteen-bytes-xx"));
            let err = netfilter.apply(&long).unwrap_err();
            assert!(err.to_string().contains("is 16 bytes"), "{err}");
            assert_eq!(listed_ruleset(), "");
        });
    }

    #[test]
    fn nft_lists_what_apply_installed() {
        in_new_netns(|| {
            Netfilter::open().unwrap().apply(&example()).unwrap();
            let listed = listed_ruleset();
            assert_eq!(listed, EXAMPLE);
            for expected in [
                "type nat hook prerouting priority dstnat; policy accept;",
                "type nat hook postrouting priority srcnat; policy accept;",
                "type filter hook forward priority filter; policy drop;",
                "iifname \"ens5\" tcp dport 6000 counter dnat to 192.168.0.2:8080",
                "ip saddr 192.168.0.0/24 oifname \"ens5\" counter masquerade",
                "ip saddr 192.168.0.0/24 oifname != \"br0\" counter masquerade",
                "iifname \"ens5\" oifname \"veth0\" counter accept",
                "ip daddr 192.168.1.2 tcp dport 8080 ct state established,related,new counter accept",
            ] {
                assert!(listed.contains(expected), "{expected:?} missing in\n{listed}");
            }
            // The counters are real counter expressions, at zero.
            let raw = nft(&["list", "ruleset"]);
            assert_eq!(raw.matches("counter packets 0 bytes 0").count(), 6, "{raw}");

            Netfilter::open().unwrap().apply(&everything()).unwrap();
            assert_eq!(listed_ruleset(), render(&everything()));
        });
    }

    /// Our messages give the kernel exactly the expressions nft gives it for the
    /// rendered ruleset.
    #[test]
    fn same_expressions_as_nft() {
        for firewall in [example(), everything()] {
            let rendered = render(&firewall);
            let ours = in_new_netns(|| {
                Netfilter::open().unwrap().apply(&firewall).unwrap();
                kernel_expressions()
            });
            let nfts = in_new_netns(|| {
                let path = std::env::temp_dir().join(format!(
                    "netns-fixture-nat-{}-{:?}.nft",
                    std::process::id(),
                    std::thread::current().id()
                ));
                std::fs::write(&path, &rendered).unwrap();
                let out = nft(&["-f", path.to_str().unwrap()]);
                std::fs::remove_file(&path).unwrap();
                assert_eq!(out, "");
                kernel_expressions()
            });
            assert!(ours.contains("[ masq ]"), "{ours}");
            assert_eq!(
                ours, nfts,
                "our bytecode differs from nft's for\n{rendered}"
            );
        }
    }

    #[test]
    fn apply_replaces_the_previous_tables() {
        in_new_netns(|| {
            let netfilter = Netfilter::open().unwrap();
            netfilter.apply(&everything()).unwrap();
            let v4 = Firewall::default().masquerade(Masquerade::from_network(net("10.0.0.0/8")));
            netfilter.apply(&v4).unwrap();
            assert_eq!(listed_ruleset(), render(&v4));
            assert!(!listed_ruleset().contains("ip6"));
            netfilter.apply(&Firewall::default()).unwrap();
            assert_eq!(listed_ruleset(), "");
        });
    }

    #[test]
    fn refused_rule_is_named_and_nothing_is_installed() {
        in_new_netns(|| {
            let netfilter = Netfilter::open().unwrap();
            netfilter.apply(&example()).unwrap();
            let before = listed_ruleset();
            // `masquerade` in a filter chain: the kernel refuses it (nft would too).
            let mut tables = plan(&Firewall::default().forward_policy(Verdict::Drop)).unwrap();
            tables[0].chains[0].rules.push(Rule {
                matches: vec![Match::Protocol {
                    protocol: Protocol::Udp,
                    destination_port: Some(53),
                }],
                action: Action::Masquerade,
            });
            let err = netfilter.send_batch(&tables).unwrap_err();
            match &err {
                NftError::Refused {
                    table,
                    chain,
                    rule,
                    errno,
                    ..
                } => {
                    assert_eq!(table.as_deref(), Some("ip netns_fixture"));
                    assert_eq!(chain.as_deref(), Some("forward"));
                    assert_eq!(rule.as_deref(), Some("udp dport 53 counter masquerade"));
                    assert_eq!(*errno, libc::EOPNOTSUPP);
                }
                other => panic!("expected Refused, got {other:?}"),
            }
            assert!(
                err.to_string().starts_with(
                    "nf_tables refused rule `udp dport 53 counter masquerade` in chain forward \
                     of table ip netns_fixture: Operation not supported (EOPNOTSUPP)"
                ),
                "{err}"
            );
            // The batch was atomic: the earlier firewall is untouched.
            assert_eq!(listed_ruleset(), before);
            // And the socket is still usable.
            netfilter.apply(&everything()).unwrap();
            assert_eq!(listed_ruleset(), render(&everything()));
        });
    }

    /// Without CAP_NET_ADMIN the kernel refuses the batch as a whole, at its first
    /// message.
    #[test]
    fn refused_batch_without_cap_net_admin() {
        #[repr(C)]
        struct CapHeader {
            version: u32,
            pid: libc::c_int,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct CapData {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
        const CAP_NET_ADMIN: u32 = 12;
        in_new_netns(|| {
            let netfilter = Netfilter::open().unwrap();
            let mut header = CapHeader {
                version: LINUX_CAPABILITY_VERSION_3,
                pid: 0,
            };
            let mut data = [CapData::default(); 2];
            // SAFETY: capget/capset with a v3 header and two data structs, as the
            // ABI requires; capabilities are per thread, and this thread ends here.
            unsafe {
                assert_eq!(
                    libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
                    0
                );
                data[0].effective &= !(1 << CAP_NET_ADMIN);
                assert_eq!(
                    libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
                    0
                );
            }
            let err = netfilter.apply(&example()).unwrap_err();
            assert!(
                matches!(
                    err,
                    NftError::Refused {
                        table: None,
                        errno: libc::EPERM,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                "nf_tables refused the batch: Operation not permitted (EPERM); changing the \
                 firewall needs CAP_NET_ADMIN in the namespace (run the tests as root)"
            );
        });
    }

    #[test]
    fn large_batches_are_acknowledged() {
        let mut firewall = Firewall::default().forward_policy(Verdict::Drop);
        for i in 0..2000u32 {
            let host = IpNet::new(IpAddr::V4((0x0a00_0000 + i).into()), 32).unwrap();
            firewall = firewall.forward(ForwardRule::accept().destination(host));
        }
        in_new_netns(|| {
            Netfilter::open().unwrap().apply(&firewall).unwrap();
            let listed = nft(&["list", "chain", "ip", TABLE, "forward"]);
            assert_eq!(listed.matches(" accept\n").count(), 2000);
        });
    }

    /// client (10.1.0.2) —— wan0 10.1.0.1 router lan0 10.2.0.1 —— server (10.2.0.2).
    /// The server has no route back: replies get through only thanks to masquerade.
    #[test]
    fn forwards_masquerades_and_drops_between_namespaces() {
        use crate::netlink::RouteSocket;
        use netns_fixture_topology::RouteSpec;

        let firewall = Firewall::default()
            .forward_policy(Verdict::Drop)
            .port_forward(
                PortForward::new(Protocol::Udp, 6000, "10.2.0.2:7000".parse().unwrap())
                    .in_interface("wan0"),
            )
            .masquerade(Masquerade::all().out_interface("lan0"))
            .forward(
                ForwardRule::accept()
                    .in_interface("wan0")
                    .out_interface("lan0")
                    .protocol(Protocol::Udp)
                    .destination_port(7000),
            )
            .forward(ForwardRule::accept().ct_states(CtStates::ESTABLISHED_RELATED));
        in_new_netns(|| {
            let client = File::open("/proc/thread-self/ns/net").unwrap();
            let server = unshare_net();
            let router = unshare_net();

            let route = RouteSocket::open().unwrap();
            route
                .add_veth("wan0", 10, "eth0", 10, client.as_fd())
                .unwrap();
            route
                .add_veth("lan0", 11, "eth0", 10, server.as_fd())
                .unwrap();
            route.add_address(10, net("10.1.0.1/24")).unwrap();
            route.add_address(11, net("10.2.0.1/24")).unwrap();
            route.set_up(10, true).unwrap();
            route.set_up(11, true).unwrap();
            crate::sysctl::write("net.ipv4.ip_forward", "1").unwrap();
            Netfilter::open().unwrap().apply(&firewall).unwrap();

            enter(&server);
            let route = RouteSocket::open().unwrap();
            route.add_address(10, net("10.2.0.2/24")).unwrap();
            route.set_up(10, true).unwrap();
            let listen = |port| {
                let s = UdpSocket::bind(("10.2.0.2", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                s
            };
            let (forwarded, blocked) = (listen(7000), listen(7001));

            enter(&client);
            let route = RouteSocket::open().unwrap();
            route.add_address(10, net("10.1.0.2/24")).unwrap();
            route.set_up(10, true).unwrap();
            route
                .add_route(&RouteSpec {
                    destination: net("10.2.0.0/24"),
                    gateway: "10.1.0.1".parse().unwrap(),
                })
                .unwrap();
            let sock = UdpSocket::bind("10.1.0.2:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut buf = [0; 64];

            // Port forward: 10.1.0.1:6000 -> 10.2.0.2:7000, seen from the router.
            sock.send_to(b"via dnat", "10.1.0.1:6000").unwrap();
            let (n, from) = forwarded.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"via dnat");
            assert_eq!(from.ip().to_string(), "10.2.0.1", "masqueraded source");
            forwarded.send_to(b"reply", from).unwrap();
            let (n, from) = sock.recv_from(&mut buf).unwrap();
            assert_eq!(
                (&buf[..n], from.to_string().as_str()),
                (&b"reply"[..], "10.1.0.1:6000")
            );

            // Routed directly to an accepted port, then to one the policy drops.
            sock.send_to(b"direct", "10.2.0.2:7000").unwrap();
            let (n, from) = forwarded.recv_from(&mut buf).unwrap();
            assert_eq!(
                (&buf[..n], from.ip().to_string().as_str()),
                (&b"direct"[..], "10.2.0.1")
            );
            sock.send_to(b"dropped", "10.2.0.2:7001").unwrap();
            blocked
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let err = blocked.recv_from(&mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");

            // The counters saw it all.
            enter(&router);
            let listed = nft(&["list", "ruleset"]);
            for rule in [
                "udp dport 6000 counter packets 1 ",
                "oifname \"lan0\" counter packets 2 ",
                "udp dport 7000 counter packets 2 ",
                "ct state established,related counter packets 1 ",
            ] {
                assert!(listed.contains(rule), "{rule:?} missing in\n{listed}");
            }
        });
    }
}
