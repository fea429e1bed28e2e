//! The site's navigation: what a role sees (the pages check again; a hidden link protects
//! nothing).

use crate::domain::Role;
use crate::web::page::NavLink;

use super::brand::Brand;

/// `(path under /play/<code>, i18n key, roles)`.
const PAGES: &[(&str, &str, &[Role])] = &[
    ("", "site.nav.lobby", &[Role::Player]),
    ("/history", "site.nav.history", &[Role::Player]),
    ("/notifications", "site.nav.notifications", &[Role::Player]),
    ("/cashier", "site.nav.cashier", &[Role::Player]),
    ("/protection", "site.nav.protection", &[Role::Player]),
    ("/shop", "site.nav.shop", &[Role::Agent]),
];

pub fn links(brand: &Brand, role: Role, current: &str) -> Vec<NavLink> {
    let t = crate::web::i18n::english();
    PAGES
        .iter()
        .filter(|(_, _, roles)| roles.contains(&role))
        .map(|(path, key, _)| NavLink {
            href: brand.path(path),
            label: t.get(key),
            current: *path == current,
        })
        .collect()
}
