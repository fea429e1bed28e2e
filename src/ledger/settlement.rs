//! Period settlement figures: agents' commission and the platform's revenue share, computed
//! from players' results. Pure arithmetic; the settlement service fixes the figures in the
//! store and posts them.
//!
//! Rules (DESIGN leaves them open; these are ours, issue 21):
//! - differential commission: each agent has an effective rate (its own, capped by its parent
//!   agent's; none set: the client's `commission_rate`). A player's nearest agent earns its full
//!   rate × the player's basis, every agent above it (its rate − the rate of its child agent on
//!   the path to the player) × that basis, so the levels together earn the top agent's rate;
//! - the basis is the player's NGR (what the house won from them at the providers) or, with
//!   the client's `commission_basis` = `turnover`, the player's turnover (the stakes of the
//!   rounds they played; never negative, so it never makes a negative result to carry);
//! - an agent's period result is the sum over its players together, `floor`ed; a negative
//!   result pays nothing and, when the client carries negative periods over, is carried into
//!   the agent's next periods (`carried_in` ≤ 0) until recovered;
//! - the platform's share is `floor(revenue_share_rate × (client NGR − commissions))`, zero
//!   when that is not positive, whatever the commission basis.

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

/// What agents' commission is a share of (client setting `commission_basis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Net gaming revenue: what the house won from the player.
    Ngr,
    /// The stakes of the player's rounds (a resettled round once, at its latest stake).
    Turnover,
}

impl Basis {
    pub const ALL: [Basis; 2] = [Basis::Ngr, Basis::Turnover];

    pub fn parse(text: &str) -> Option<Basis> {
        Basis::ALL.into_iter().find(|b| b.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Ngr => "ngr",
            Basis::Turnover => "turnover",
        }
    }
}

/// One player's result in the period and the agents above it, nearest first, with their
/// effective rates.
#[derive(Debug, Clone)]
pub struct PlayerResult {
    pub user_id: String,
    pub agents: Vec<(String, Rate)>,
    /// The player's NGR (revenue share and, with basis `ngr`, commission).
    pub ngr: i64,
    /// What the commission is a share of: the NGR for basis `ngr`, the turnover (≥ 0) for
    /// basis `turnover`.
    pub basis: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionLine {
    pub agent_id: String,
    /// The agent's effective rate.
    pub rate: Rate,
    /// Players below the agent with results in the period.
    pub players: i64,
    /// Their basis together.
    pub basis: i64,
    /// The differential result before carry-over (negative when they won).
    pub earned: i64,
    pub carried_in: i64,
    /// What is paid: `max(0, earned + carried_in)`.
    pub amount: i64,
    /// What the agent carries into its next period (≤ 0; 0 without carry-over).
    pub carry_out: i64,
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

/// Each agent's differential rate on one player's path (nearest first): the rates are first
/// capped from the top down (no agent above its parent), then the nearest gets its full rate
/// and each one above the difference to the one below it. The shares sum to the top agent's
/// rate and none is negative.
pub fn differential(chain: &[Rate]) -> Vec<i64> {
    let mut capped: Vec<i64> = chain.iter().map(|r| r.per_10k()).collect();
    for i in (0..capped.len().saturating_sub(1)).rev() {
        capped[i] = capped[i].min(capped[i + 1]);
    }
    (0..capped.len())
        .map(|i| capped[i] - if i == 0 { 0 } else { capped[i - 1] })
        .collect()
}

/// `floor(share × basis)` for a share in ten-thousandths (0 ..= 10,000): what one agent earns
/// of one basis, as `compute` figures `earned`. Never exceeds `basis` in magnitude.
pub fn earned(share_per_10k: i64, basis: i64) -> i64 {
    let scaled = i128::from(share_per_10k) * i128::from(basis);
    // |share| ≤ RATE_SCALE, so the quotient's magnitude is at most |basis|: it fits.
    scaled.div_euclid(i128::from(RATE_SCALE)) as i64
}

/// The period's figures. `unattributed` is NGR recorded without a player (older entries);
/// `carry` gives an agent's carried negative result (≤ 0) when the client carries over.
pub fn compute(
    players: &[PlayerResult],
    unattributed: i64,
    revenue_share_rate: Rate,
    carry: Option<&dyn Fn(&str) -> i64>,
) -> Result<Figures, FiguresError> {
    let mut ngr = unattributed;
    // agent -> (rate, players, basis, rate × basis in ten-thousandths)
    let mut by_agent: BTreeMap<&str, (Rate, i64, i64, i128)> = BTreeMap::new();
    for p in players {
        ngr = ngr.checked_add(p.ngr).ok_or(FiguresError::Overflow)?;
        let rates: Vec<Rate> = p.agents.iter().map(|(_, r)| *r).collect();
        for ((agent, rate), share) in p.agents.iter().zip(differential(&rates)) {
            let slot = by_agent.entry(agent.as_str()).or_insert((*rate, 0, 0, 0));
            slot.1 += 1;
            slot.2 = slot.2.checked_add(p.basis).ok_or(FiguresError::Overflow)?;
            slot.3 += i128::from(share) * i128::from(p.basis);
        }
    }
    let mut commission_total: i64 = 0;
    let scale = i128::from(RATE_SCALE);
    let commissions: Vec<CommissionLine> = by_agent
        .into_iter()
        .map(|(agent, (rate, players, basis, scaled))| {
            let carried_in = carry.map_or(0, |c| c(agent).min(0));
            let result = scaled + i128::from(carried_in) * scale;
            let (amount, carry_out) = if result >= 0 {
                (result / scale, 0)
            } else if carry.is_some() {
                // Truncated toward zero: a carried loss never exceeds the exact one.
                (0, result / scale)
            } else {
                (0, 0)
            };
            let to_i64 = |v: i128| i64::try_from(v).map_err(|_| FiguresError::Overflow);
            let amount = to_i64(amount)?;
            commission_total = commission_total
                .checked_add(amount)
                .ok_or(FiguresError::Overflow)?;
            Ok(CommissionLine {
                agent_id: agent.to_owned(),
                rate,
                players,
                basis,
                earned: to_i64(scaled.div_euclid(scale))?,
                carried_in,
                amount,
                carry_out: to_i64(carry_out)?,
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
                c.amount >= 0 && c.carry_out <= 0 && c.carried_in <= 0,
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

    fn player(u: &str, agents: &[(&str, i64)], ngr: i64) -> PlayerResult {
        PlayerResult {
            user_id: u.into(),
            agents: agents
                .iter()
                .map(|(a, r)| ((*a).to_owned(), Rate(*r)))
                .collect(),
            ngr,
            basis: ngr,
        }
    }

    #[test]
    fn differential_shares_telescope_to_the_top_rate() {
        let r = |v: &[i64]| differential(&v.iter().map(|x| Rate(*x)).collect::<Vec<_>>());
        assert_eq!(r(&[200, 300, 450, 500]), vec![200, 100, 150, 50]);
        assert_eq!(r(&[500]), vec![500]);
        // A child above its parent is capped at the parent's rate.
        assert_eq!(r(&[600, 400]), vec![400, 0]);
        assert!(r(&[]).is_empty());
    }

    #[test]
    fn nearest_agent_earns_its_rate_and_uplines_the_difference() {
        let players = [
            player("p1", &[("a1", 1_000)], 10_000),
            player("p2", &[("a1", 1_000)], -3_000),
            player("p3", &[("a2", 1_000)], -500),
            player("p4", &[], 1_000),
            player("p5", &[("a3", 500), ("a1", 1_000)], 2_000),
        ];
        let f = compute(&players, 0, Rate(2_000), None).unwrap();
        assert_eq!(f.ngr, 9_500);
        let line = |a: &str| f.commissions.iter().find(|c| c.agent_id == a).unwrap();
        // a1: 10% of (10,000 − 3,000) + (10% − 5%) of 2,000.
        assert_eq!((line("a1").players, line("a1").basis), (3, 9_000));
        assert_eq!(line("a1").amount, 800);
        assert_eq!(line("a2").amount, 0);
        assert_eq!(line("a2").earned, -50);
        assert_eq!(line("a2").carry_out, 0, "no carry-over asked");
        assert_eq!(line("a3").amount, 100);
        assert_eq!(f.commission_total, 900);
        assert_eq!(f.revenue_base, 8_600);
        assert_eq!(f.revenue_share, 1_720);
    }

    /// Basis `turnover`: the same differential rates on each player's turnover, paid even
    /// when the player won (no negative result to carry); the platform's share stays on
    /// NGR − commissions.
    #[test]
    fn turnover_basis_pays_on_stakes_and_shares_on_ngr() {
        let on_turnover = |u: &str, agents: &[(&str, i64)], ngr: i64, turnover: i64| PlayerResult {
            basis: turnover,
            ..player(u, agents, ngr)
        };
        let players = [
            // Staked 200.00, lost 30.00.
            on_turnover("p1", &[("a2", 100), ("a1", 300)], 3_000, 20_000),
            // Staked 50.00, won 12.00: still turnover.
            on_turnover("p2", &[("a1", 300)], -1_200, 5_000),
            // Staked 0.99 under a 0.5% agent: less than a minor unit, floored to 0.
            on_turnover("p3", &[("a3", 50)], 99, 99),
        ];
        let carry = |_: &str| 0;
        let f = compute(&players, 0, Rate(5_000), Some(&carry)).unwrap();
        let line = |a: &str| f.commissions.iter().find(|c| c.agent_id == a).unwrap();
        // a2: 1% of 20,000; a1: (3% − 1%) of 20,000 + 3% of 5,000.
        assert_eq!((line("a2").basis, line("a2").amount), (20_000, 200));
        assert_eq!((line("a1").players, line("a1").basis), (2, 25_000));
        assert_eq!((line("a1").earned, line("a1").amount), (550, 550));
        assert_eq!((line("a3").earned, line("a3").amount), (0, 0));
        assert!(f.commissions.iter().all(|c| c.carry_out == 0));
        assert_eq!(f.commission_total, 750);
        assert_eq!(f.ngr, 1_899);
        // 50% of (18.99 − 7.50).
        assert_eq!((f.revenue_base, f.revenue_share), (1_149, 574));
        // Commission on turnover may exceed the NGR: no share, never a negative one.
        let f = compute(
            &[on_turnover("p2", &[("a1", 300)], -1_200, 5_000)],
            0,
            Rate(5_000),
            None,
        )
        .unwrap();
        assert_eq!(
            (f.commission_total, f.revenue_base, f.revenue_share),
            (150, 0, 0)
        );
        assert_eq!(Basis::parse("turnover"), Some(Basis::Turnover));
        assert_eq!(Basis::parse("ggr"), None);
    }

    #[test]
    fn negative_results_carry_over_until_recovered() {
        let carry = |a: &str| if a == "a1" { -300 } else { 0 };
        let f = compute(
            &[player("p1", &[("a1", 1_000)], 2_000)],
            0,
            Rate(0),
            Some(&carry),
        )
        .unwrap();
        let c = &f.commissions[0];
        assert_eq!(
            (c.earned, c.carried_in, c.amount, c.carry_out),
            (200, -300, 0, -100)
        );
        let f = compute(
            &[player("p1", &[("a1", 1_000)], 5_000)],
            0,
            Rate(0),
            Some(&|_: &str| -100),
        )
        .unwrap();
        let c = &f.commissions[0];
        assert_eq!((c.amount, c.carry_out), (400, 0));
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
                    agents: if *agent > 0 { vec![(format!("a{agent}"), Rate(c))] } else { vec![] },
                    ngr: *ngr,
                    basis: *ngr,
                })
                .collect();
            let f = compute(&players, unattributed, Rate(r), None).unwrap();
            let total: i64 = unattributed + ngrs.iter().map(|(_, n)| n).sum::<i64>();
            prop_assert_eq!(f.ngr, total);
            // Floor arithmetic: each payment is within one minor unit of the exact share.
            for line in &f.commissions {
                let exact = i128::from(line.basis.max(0)) * i128::from(c);
                prop_assert!(i128::from(line.amount) * 10_000 <= exact);
                prop_assert!(exact < (i128::from(line.amount) + 1) * 10_000);
            }
            prop_assert_eq!(f.revenue_base, (total - f.commission_total).max(0));
            // When no player won, what is paid out never exceeds what the house won.
            if unattributed >= 0 && ngrs.iter().all(|(_, n)| *n >= 0) {
                prop_assert!(f.commission_total + f.revenue_share <= total.max(0));
            }
        }

        /// The differential split over any agent tree never pays more than each player's top
        /// rate × basis, and no share is negative.
        #[test]
        fn differential_split_never_pays_past_the_top_rate(
            chains in proptest::collection::vec(
                (proptest::collection::vec(0i64..=RATE_SCALE, 0..6), -1_000_000_000i64..1_000_000_000),
                1..30,
            ),
            carry in proptest::option::of(-1_000_000i64..=0),
        ) {
            // Agents are named by depth from the top, so players share upline agents.
            let players: Vec<PlayerResult> = chains
                .iter()
                .enumerate()
                .map(|(i, (rates, basis))| PlayerResult {
                    user_id: format!("p{i}"),
                    agents: rates
                        .iter()
                        .enumerate()
                        .map(|(depth, r)| (format!("a{}-{}", rates.len() - depth, i % 3), Rate(*r)))
                        .collect(),
                    ngr: *basis,
                    basis: *basis,
                })
                .collect();
            for chain in &chains {
                let rates: Vec<Rate> = chain.0.iter().map(|r| Rate(*r)).collect();
                let shares = differential(&rates);
                prop_assert!(shares.iter().all(|s| *s >= 0));
                prop_assert_eq!(shares.iter().sum::<i64>(), chain.0.last().copied().unwrap_or(0));
            }
            let carry_fn = move |_: &str| carry.unwrap_or(0);
            let f = compute(&players, 0, Rate(0), carry.map(|_| &carry_fn as &dyn Fn(&str) -> i64)).unwrap();
            let cap: i128 = chains
                .iter()
                .map(|(rates, basis)| i128::from(rates.last().copied().unwrap_or(0)) * i128::from((*basis).max(0)))
                .sum();
            prop_assert!(f.commissions.iter().all(|c| c.amount >= 0 && c.carry_out <= 0));
            prop_assert!(i128::from(f.commission_total) * 10_000 <= cap);
        }
    }
}
