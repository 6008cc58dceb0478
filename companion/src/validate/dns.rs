//! `dns`: the names external-dns publishes for a LoadBalancer Service
//! (`external-dns.alpha.kubernetes.io/hostname`) resolve, at the DNS server the operator names,
//! to the Service's addresses: A to its IPv4 VIPs, AAAA to its IPv6 VIPs (a family it has no
//! VIP of must have no record). The migration changes every VIP, so a record still pointing at
//! the old L2 address is the usual leftover: a wrong address is looked up in the migration's
//! backup (the Services' addresses and the L2 pools from before it) and named as such.
//!
//! The caller asks the server ([`crate::dns`]) for the names [`dns_names`] lists; this module
//! only compares.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bgplb_site::Range;
use k8s_openapi::api::core::v1::Service;

use super::views::ServiceView;
use super::{objects, ranges, Check, Ctx, Findings};
use crate::dns::{Answer, DnsError, Lookup, RecordType};
use crate::migrate::Backup;

/// What the DNS server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsResults {
    /// The server asked, as the operator gave it.
    pub server: String,
    /// Each name [`dns_names`] listed, normalized.
    pub lookups: BTreeMap<String, Lookup>,
}

/// The names to resolve: every name of external-dns's hostname annotation on a LoadBalancer
/// Service, normalized, sorted, each once.
pub fn dns_names(services: &[Service]) -> Vec<String> {
    let mut names: Vec<String> = super::views::lb_services(services)
        .into_iter()
        .filter(|s| s.dns_target.is_none())
        .flat_map(|s| s.dns_names)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The cluster before the migration, from its backup.
#[derive(Default)]
struct Before {
    /// `namespace/name` → the LoadBalancer addresses the Service had.
    services: Vec<(String, Vec<IpAddr>)>,
    /// The old (L2) pools: name, addresses.
    pools: Vec<(String, Vec<Range>)>,
}

impl Before {
    fn of(backup: Option<&Backup>) -> Before {
        let mut out = Before::default();
        for o in backup.map(|b| b.objects.as_slice()).unwrap_or_default() {
            match objects::kind(o) {
                "Service" => out.services.push((
                    format!(
                        "{}/{}",
                        objects::str_at(o, "/metadata/namespace").unwrap_or("default"),
                        objects::name(o)
                    ),
                    objects::array(o, "/status/loadBalancer/ingress")
                        .filter_map(|i| objects::str_at(i, "/ip"))
                        .filter_map(|ip| ip.trim().parse().ok())
                        .collect(),
                )),
                "CiliumLoadBalancerIPPool" => out
                    .pools
                    .push((objects::name(o).to_string(), ranges::pool_blocks(o).ranges)),
                _ => {}
            }
        }
        out
    }
}

pub(super) fn check(ctx: &Ctx) -> Check {
    let mut f = Findings::new("dns");
    let Some(dns) = &ctx.input.dns else {
        f.info("not checked: no DNS server given (--dns-server)");
        return f.finish();
    };
    let before = Before::of(ctx.input.backup.as_ref());
    let (mut services, mut names, mut correct) = (0usize, 0usize, 0usize);
    for s in ctx.services.iter().filter(|s| !s.dns_names.is_empty()) {
        services += 1;
        if let Some(t) = &s.dns_target {
            f.info(format!(
                "{s}: {}: external-dns points the names at its target annotation ({t}), not at the \
                 service's addresses: not checked",
                s.dns_names.join(", ")
            ));
            continue;
        }
        let vips: Vec<IpAddr> = s
            .ips
            .iter()
            .filter_map(|ip| ip.trim().parse().ok())
            .collect();
        if vips.is_empty() {
            f.warn(format!(
                "{s}: {}: the service has no LoadBalancer IP yet: nothing to compare the names with",
                s.dns_names.join(", ")
            ));
            continue;
        }
        for name in &s.dns_names {
            names += 1;
            let Some(lookup) = dns.lookups.get(name) else {
                f.warn(format!("{s}: {name}: not asked"));
                continue;
            };
            if judge(ctx, &mut f, &before, &dns.server, s, name, &vips, lookup) {
                correct += 1;
            }
        }
    }
    if services == 0 {
        f.info(format!(
            "no LoadBalancer service has an {} annotation",
            crate::migrate::plan::DNS_ANNOTATION
        ));
    } else {
        f.info(format!(
            "{names} name(s) of {services} service(s) asked at {}: {correct} resolve to their service's address(es)",
            dns.server
        ));
    }
    f.finish()
}

/// Judges one name; true when both families are right.
#[allow(clippy::too_many_arguments)]
fn judge(
    ctx: &Ctx,
    f: &mut Findings,
    before: &Before,
    server: &str,
    s: &ServiceView,
    name: &str,
    vips: &[IpAddr],
    lookup: &Lookup,
) -> bool {
    let should = list(vips);
    if lookup.a == Err(DnsError::NxDomain) && lookup.aaaa == Err(DnsError::NxDomain) {
        f.fail(format!(
            "{s}: {name} does not exist at {server} (NXDOMAIN): it should resolve to {should}"
        ));
        return false;
    }
    let mut ok = true;
    let (mut found, mut cnames) = (Vec::new(), String::new());
    for t in [RecordType::A, RecordType::Aaaa] {
        let want: Vec<IpAddr> = vips
            .iter()
            .copied()
            .filter(|a| a.is_ipv4() == (t == RecordType::A))
            .collect();
        match lookup.get(t) {
            Err(e) if want.is_empty() => {
                f.warn(format!(
                    "{s}: {name} {t}: {e} at {server} (the service has no {} address, so none is expected)",
                    family(t)
                ));
            }
            Err(e) => {
                ok = false;
                f.fail(format!(
                    "{s}: {name} {t}: {e} at {server}: it should resolve to {}",
                    list(&want)
                ));
            }
            Ok(answer) => match compare(ctx, before, s, &want, answer) {
                None => {
                    found.extend(answer.addresses.iter().copied());
                    if cnames.is_empty() {
                        cnames = via(answer);
                    }
                }
                Some(problem) => {
                    ok = false;
                    f.fail(format!("{s}: {name} {t}{}: {problem}", via(answer)));
                }
            },
        }
    }
    if ok {
        f.info(format!("{s}: {name}{cnames} resolves to {}", list(&found)));
    }
    ok
}

/// What is wrong with one family's answer, if anything.
fn compare(
    ctx: &Ctx,
    before: &Before,
    s: &ServiceView,
    want: &[IpAddr],
    answer: &Answer,
) -> Option<String> {
    let got = &answer.addresses;
    let wrong: Vec<IpAddr> = got.iter().copied().filter(|a| !want.contains(a)).collect();
    let missing: Vec<IpAddr> = want.iter().copied().filter(|a| !got.contains(a)).collect();
    if wrong.is_empty() && missing.is_empty() {
        return None;
    }
    let should = if want.is_empty() {
        "the service has no address of this family, so it should have no record".to_string()
    } else {
        format!("it should be {}", list(want))
    };
    if got.is_empty() {
        return Some(format!(
            "no record (the server answers without one): {should}"
        ));
    }
    let mut why: Vec<String> = wrong.iter().map(|a| explain(ctx, before, s, *a)).collect();
    // Part of what it should be is there: name the rest.
    if !missing.is_empty() && missing.len() < want.len() {
        why.push(format!("{} missing", list(&missing)));
    }
    Some(format!(
        "resolves to {}, {should}{}",
        list(got),
        if why.is_empty() {
            String::new()
        } else {
            format!(": {}", why.join("; "))
        }
    ))
}

/// Where a wrong address comes from: the migration's backup first, then the cluster and the
/// site's pools.
fn explain(ctx: &Ctx, before: &Before, s: &ServiceView, a: IpAddr) -> String {
    let me = s.to_string();
    if before
        .services
        .iter()
        .any(|(n, ips)| *n == me && ips.contains(&a))
    {
        return format!(
            "stale record from before the migration (L2 address {a}, this service's address then)"
        );
    }
    if let Some((n, _)) = before.services.iter().find(|(_, ips)| ips.contains(&a)) {
        return format!(
            "stale record from before the migration (L2 address {a}, the address of {n} then)"
        );
    }
    if let Some((p, _)) = before
        .pools
        .iter()
        .find(|(_, r)| r.iter().any(|r| r.contains(a)))
    {
        return format!(
            "stale record from before the migration ({a} is inside the pre-migration L2 pool {p})"
        );
    }
    if let Some(o) = ctx
        .services
        .iter()
        .find(|o| o.to_string() != me && o.ips.iter().any(|ip| ip.trim().parse() == Ok(a)))
    {
        return format!("{a} is the address of service {o}");
    }
    match ctx.site_pools.iter().find(|p| p.contains(a)) {
        None => format!("{a} is outside every pool of the site"),
        Some(p) => format!("{a} is in site pool {}, but no service has it", p.name),
    }
}

fn via(answer: &Answer) -> String {
    if answer.cnames.is_empty() {
        String::new()
    } else {
        format!(" (via CNAME {})", answer.cnames.join(" -> "))
    }
}

fn family(t: RecordType) -> &'static str {
    match t {
        RecordType::A => "IPv4",
        RecordType::Aaaa => "IPv6",
    }
}

fn list(addrs: &[IpAddr]) -> String {
    if addrs.is_empty() {
        return "nothing".into();
    }
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
