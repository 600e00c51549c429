//! Admission limits of one node: connections per client address, signed-out
//! connections per address and in all, connections per account.
//!
//! They are counted here, in memory, because they describe this process's
//! sockets (like presence's connection keys): each node of several enforces
//! them on its own share of the traffic. What must hold across nodes (login
//! failures, send and sign-up budgets) goes through the
//! [`crate::store::RateLimiter`] instead.

use std::net::IpAddr;
use std::sync::Mutex;

use crate::model::UserId;
use crate::IdMap;

/// What a client address counts as: an IPv4 address itself, an IPv6 address
/// by its /64 (one subscriber's prefix: a host picks any of its 2^64
/// addresses at will, so counting them one by one would limit nothing).
/// IPv4-mapped IPv6 addresses count as their IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddrKey(IpAddr);

impl AddrKey {
    /// The key of `addr`.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddrKey(addr),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(IpAddr::V4(v4)),
                None => {
                    let mut s = v6.segments();
                    s[4..].fill(0);
                    AddrKey(IpAddr::V6(s.into()))
                }
            },
        }
    }
}

impl std::fmt::Display for AddrKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/64"),
        }
    }
}

/// The caps, from [`crate::Config`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caps {
    pub(crate) unauthenticated: usize,
    pub(crate) unauthenticated_per_address: usize,
    pub(crate) per_address: usize,
    pub(crate) per_user: usize,
}

/// Why a connection is turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Too many connections signing in on this node.
    Unauthenticated,
    /// Too many connections signing in from this address.
    UnauthenticatedFromAddress,
    /// Too many connections from this address.
    FromAddress,
}

#[derive(Default)]
struct AddrCount {
    open: usize,
    unauthenticated: usize,
}

#[derive(Default)]
struct Inner {
    unauthenticated: usize,
    by_addr: IdMap<AddrKey, AddrCount>,
    by_user: IdMap<UserId, usize>,
}

/// The counts. One lock, taken once when a connection opens, signs in and
/// closes: never per frame.
pub(crate) struct Admission {
    caps: Caps,
    inner: Mutex<Inner>,
}

impl Admission {
    pub(crate) fn new(caps: Caps) -> Self {
        Self {
            caps,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a new, signed-out connection from `addr`, or says why not.
    pub(crate) fn open(&self, addr: Option<AddrKey>) -> Result<(), Refusal> {
        let mut s = self.lock();
        if s.unauthenticated >= self.caps.unauthenticated {
            return Err(Refusal::Unauthenticated);
        }
        if let Some(addr) = addr {
            let c = s.by_addr.entry(addr).or_default();
            if c.open >= self.caps.per_address {
                return Err(Refusal::FromAddress);
            }
            if c.unauthenticated >= self.caps.unauthenticated_per_address {
                return Err(Refusal::UnauthenticatedFromAddress);
            }
            c.open += 1;
            c.unauthenticated += 1;
        }
        s.unauthenticated += 1;
        Ok(())
    }

    /// A signed-out connection of `addr` signs in as `user`: takes one of
    /// the user's slots, or returns `false` (nothing changes) when the user
    /// has `per_user` connections already.
    pub(crate) fn sign_in(&self, addr: Option<AddrKey>, user: &UserId) -> bool {
        let mut s = self.lock();
        let n = match s.by_user.get_mut(user) {
            Some(n) => n,
            None => s.by_user.entry(user.clone()).or_insert(0),
        };
        if *n >= self.caps.per_user {
            return false;
        }
        *n += 1;
        s.unauthenticated = s.unauthenticated.saturating_sub(1);
        if let Some(c) = addr.and_then(|a| s.by_addr.get_mut(&a)) {
            c.unauthenticated = c.unauthenticated.saturating_sub(1);
        }
        true
    }

    /// Undoes [`Admission::sign_in`] for a connection whose sign-in failed
    /// after all: it is signed out again.
    pub(crate) fn sign_in_failed(&self, addr: Option<AddrKey>, user: &UserId) {
        let mut s = self.lock();
        if let Some(n) = s.by_user.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.by_user.remove(user);
            }
        }
        s.unauthenticated += 1;
        if let Some(c) = addr.and_then(|a| s.by_addr.get_mut(&a)) {
            c.unauthenticated += 1;
        }
    }

    /// A connection admitted by [`Admission::open`] closes, signed in as
    /// `user` or not.
    pub(crate) fn close(&self, addr: Option<AddrKey>, user: Option<&UserId>) {
        let mut s = self.lock();
        match user {
            Some(u) => {
                if let Some(n) = s.by_user.get_mut(u) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        s.by_user.remove(u);
                    }
                }
            }
            None => s.unauthenticated = s.unauthenticated.saturating_sub(1),
        }
        if let Some(a) = addr {
            if let Some(c) = s.by_addr.get_mut(&a) {
                c.open = c.open.saturating_sub(1);
                if user.is_none() {
                    c.unauthenticated = c.unauthenticated.saturating_sub(1);
                }
                if c.open == 0 {
                    s.by_addr.remove(&a);
                }
            }
        }
    }

    /// Connections not signed in yet, on this node.
    #[cfg(test)]
    pub(crate) fn unauthenticated(&self) -> usize {
        self.lock().unauthenticated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Caps {
        Caps {
            unauthenticated: 5,
            unauthenticated_per_address: 2,
            per_address: 3,
            per_user: 2,
        }
    }

    fn key(s: &str) -> Option<AddrKey> {
        Some(AddrKey::of(s.parse().unwrap()))
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        assert_eq!(
            key("2001:db8:1:2::1").unwrap().to_string(),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn one_address_cannot_take_the_signed_out_share_of_others() {
        let a = Admission::new(caps());
        let (x, y) = (key("192.0.2.1"), key("192.0.2.2"));
        a.open(x).unwrap();
        a.open(x).unwrap();
        assert_eq!(a.open(x), Err(Refusal::UnauthenticatedFromAddress));
        a.open(y).unwrap();
        // Signing in frees the address's signed-out share, not its total.
        let u = UserId::from("u");
        assert!(a.sign_in(x, &u));
        a.open(x).unwrap();
        assert_eq!(a.open(x), Err(Refusal::FromAddress));
        a.close(x, Some(&u));
        a.open(x).unwrap_err(); // two signed-out ones from x still
        a.close(x, None);
        a.open(x).unwrap();
        assert_eq!(a.unauthenticated(), 3);
    }

    #[test]
    fn the_global_signed_out_cap_still_holds() {
        let a = Admission::new(caps());
        for i in 0..5 {
            a.open(key(&format!("192.0.2.{i}"))).unwrap();
        }
        assert_eq!(a.open(key("192.0.2.99")), Err(Refusal::Unauthenticated));
        assert_eq!(a.open(None), Err(Refusal::Unauthenticated));
    }

    #[test]
    fn an_account_has_at_most_per_user_connections() {
        let a = Admission::new(caps());
        let u = UserId::from("u");
        for i in 0..3 {
            a.open(key(&format!("192.0.2.{i}"))).unwrap();
        }
        assert!(a.sign_in(key("192.0.2.0"), &u));
        assert!(a.sign_in(key("192.0.2.1"), &u));
        assert!(!a.sign_in(key("192.0.2.2"), &u), "third is refused");
        assert!(a.sign_in(key("192.0.2.2"), &UserId::from("v")));
        a.close(key("192.0.2.0"), Some(&u));
        a.open(None).unwrap();
        assert!(a.sign_in(None, &u), "a slot came free");
        a.sign_in_failed(None, &u);
        assert_eq!(a.unauthenticated(), 1);
        assert!(
            a.sign_in(None, &u),
            "and is free again after a failed sign-in"
        );
    }
}
