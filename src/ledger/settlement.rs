//! Period settlement figures: agents' commission and the platform's revenue share, computed
//! from players' net gaming revenue (NGR: what the house won from them at the providers, net of
//! their wins; negative when they won). Pure arithmetic; the HTTP layer fixes the figures in the
//! store and posts them.
//!
//! Rules (DESIGN leaves them open; these are ours):
//! - a player's NGR earns commission for its nearest agent ancestor only (no upline overrides);
//! - an agent's commission is `floor(rate × NGR)` of its players together, zero when they won
//!   (no negative carry-over);
//! - the platform's share is `floor(revenue_share_rate × (client NGR − commissions))`, zero
//!   when that is not positive.

use std::collections::BTreeMap;

/// Rates carry four decimals (client settings `commission_rate`, `revenue_share_rate`).
pub const RATE_SCALE: i64 = 10_000;

/// A rate in ten-thousandths, 0 ..= 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(i64);

impl Rate {
    pub fn from_per_10k(v: i64) -> Option<Rate> {
        (0..=RATE_SCALE).contains(&v).then_some(Rate(v))
    }

    /// `"0.0500"` style, as client settings keep them.
    pub fn parse(text: &str) -> Option<Rate> {
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty()
            || frac.len() > 4
            || !whole
                .bytes()
                .chain(frac.bytes())
                .all(|b| b.is_ascii_digit())
            || whole.len() > 1
        {
            return None;
        }
        let frac_value: i64 = format!("{frac:0<4}").parse().ok()?;
        let whole_value: i64 = whole.parse().ok()?;
        Rate::from_per_10k(whole_value * RATE_SCALE + frac_value)
    }

    pub fn per_10k(self) -> i64 {
        self.0
    }

    /// Always four decimals.
    pub fn to_text(self) -> String {
        format!("{}.{:04}", self.0 / RATE_SCALE, self.0 % RATE_SCALE)
    }

    /// `floor(rate × base)`, zero for a base that is not positive.
    pub fn share_of(self, base: i64) -> i64 {
        if base <= 0 {
            return 0;
        }
        // i128: base × 10,000 overflows i64 for large bases; the result never exceeds base.
        (i128::from(base) * i128::from(self.0) / i128::from(RATE_SCALE)) as i64
    }
}

/// One player's NGR in the period and the agent it counts for.
#[derive(Debug, Clone)]
pub struct PlayerResult {
    pub user_id: String,
    pub agent_id: Option<String>,
    pub ngr: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionLine {
    pub agent_id: String,
    pub players: i64,
    pub ngr: i64,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// The client's NGR: every player's, plus results not attributed to a player.
    pub ngr: i64,
    /// Agents whose players played in the period, by agent id.
    pub commissions: Vec<CommissionLine>,
    pub commission_total: i64,
    /// What the revenue share is taken of.
    pub revenue_base: i64,
    pub revenue_share: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FiguresError {
    #[error("settlement figures exceed the representable range")]
    Overflow,
}

/// The period's figures. `unattributed` is NGR recorded without a player (older entries).
pub fn compute(
    players: &[PlayerResult],
    unattributed: i64,
    commission_rate: Rate,
    revenue_share_rate: Rate,
) -> Result<Figures, FiguresError> {
    let mut ngr = unattributed;
    let mut by_agent: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for p in players {
        ngr = ngr.checked_add(p.ngr).ok_or(FiguresError::Overflow)?;
        if let Some(agent) = &p.agent_id {
            let slot = by_agent.entry(agent.as_str()).or_insert((0, 0));
            slot.0 += 1;
            slot.1 = slot.1.checked_add(p.ngr).ok_or(FiguresError::Overflow)?;
        }
    }
    let mut commission_total: i64 = 0;
    let commissions: Vec<CommissionLine> = by_agent
        .into_iter()
        .map(|(agent, (players, agent_ngr))| {
            let amount = commission_rate.share_of(agent_ngr);
            commission_total = commission_total
                .checked_add(amount)
                .ok_or(FiguresError::Overflow)?;
            Ok(CommissionLine {
                agent_id: agent.to_owned(),
                players,
                ngr: agent_ngr,
                amount,
            })
        })
        .collect::<Result<_, FiguresError>>()?;
    let revenue_base = ngr
        .checked_sub(commission_total)
        .ok_or(FiguresError::Overflow)?
        .max(0);
    let figures = Figures {
        ngr,
        commissions,
        commission_total,
        revenue_base,
        revenue_share: revenue_share_rate.share_of(revenue_base),
    };
    figures.assert_sound();
    Ok(figures)
}

impl Figures {
    /// Nothing negative is paid, no share exceeds what it is a share of.
    pub fn assert_sound(&self) {
        for c in &self.commissions {
            assert!(
                c.amount >= 0 && c.amount <= c.ngr.max(0),
                "commission out of range: {c:?}"
            );
        }
        assert_eq!(
            self.commission_total,
            self.commissions.iter().map(|c| c.amount).sum::<i64>()
        );
        assert!(self.revenue_share >= 0 && self.revenue_share <= self.revenue_base);
        assert!(self.revenue_base >= 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rates_parse_and_print() {
        assert_eq!(Rate::parse("0.05"), Some(Rate(500)));
        assert_eq!(Rate::parse("0.0500").unwrap().to_text(), "0.0500");
        assert_eq!(Rate::parse("1"), Some(Rate(10_000)));
        assert_eq!(Rate::parse("0"), Some(Rate(0)));
        for bad in ["", ".5", "1.0001", "0.00001", "-0.1", "2", "1e-2", "0.5x"] {
            assert_eq!(Rate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn commission_goes_to_the_nearest_agent_and_share_is_after_commission() {
        let p = |u: &str, a: Option<&str>, ngr| PlayerResult {
            user_id: u.into(),
            agent_id: a.map(Into::into),
            ngr,
        };
        let players = [
            p("p1", Some("a1"), 10_000),
            p("p2", Some("a1"), -3_000),
            p("p3", Some("a2"), -500),
            p("p4", None, 1_000),
        ];
        let f = compute(&players, 0, Rate(1_000), Rate(2_000)).unwrap();
        assert_eq!(f.ngr, 7_500);
        assert_eq!(
            f.commissions,
            vec![
                CommissionLine {
                    agent_id: "a1".into(),
                    players: 2,
                    ngr: 7_000,
                    amount: 700
                },
                CommissionLine {
                    agent_id: "a2".into(),
                    players: 1,
                    ngr: -500,
                    amount: 0
                },
            ]
        );
        assert_eq!(f.revenue_base, 6_800);
        assert_eq!(f.revenue_share, 1_360);
    }

    proptest! {
        #[test]
        fn figures_are_sound(
            ngrs in proptest::collection::vec((0u8..4, -1_000_000_000i64..1_000_000_000), 0..40),
            unattributed in -1_000_000i64..1_000_000,
            c in 0i64..=RATE_SCALE,
            r in 0i64..=RATE_SCALE,
        ) {
            let players: Vec<PlayerResult> = ngrs
                .iter()
                .enumerate()
                .map(|(i, (agent, ngr))| PlayerResult {
                    user_id: format!("p{i}"),
                    agent_id: (*agent > 0).then(|| format!("a{agent}")),
                    ngr: *ngr,
                })
                .collect();
            let f = compute(&players, unattributed, Rate(c), Rate(r)).unwrap();
            let total: i64 = unattributed + ngrs.iter().map(|(_, n)| n).sum::<i64>();
            prop_assert_eq!(f.ngr, total);
            // Floor arithmetic: each payment is within one minor unit of the exact share.
            for line in &f.commissions {
                let exact = i128::from(line.ngr.max(0)) * i128::from(c);
                prop_assert!(i128::from(line.amount) * 10_000 <= exact);
                prop_assert!(exact < (i128::from(line.amount) + 1) * 10_000);
            }
            prop_assert_eq!(f.revenue_base, (total - f.commission_total).max(0));
            // When no player won, what is paid out never exceeds what the house won.
            if unattributed >= 0 && ngrs.iter().all(|(_, n)| *n >= 0) {
                prop_assert!(f.commission_total + f.revenue_share <= total.max(0));
            }
        }
    }
}
