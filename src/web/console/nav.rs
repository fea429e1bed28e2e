//! The console's navigation: which pages a role sees (the pages themselves check again, with
//! the API's reach rules: hiding a link is never the protection).

use crate::domain::Role;
use crate::web::page::NavLink;

/// `(path under /console, i18n key, roles)`.
const STAFF: &[Role] = &[Role::SuperAdmin, Role::ClientAdmin, Role::Agent];
const ADMINS: &[Role] = &[Role::SuperAdmin, Role::ClientAdmin];
const PAGES: &[(&str, &str, &[Role])] = &[
    ("", "nav.dashboard", STAFF),
    ("/users", "nav.users", STAFF),
    ("/payments", "nav.payments", ADMINS),
    ("/settlements", "nav.settlements", ADMINS),
    ("/clients", "nav.clients", &[Role::SuperAdmin]),
    ("/client", "nav.client", &[Role::ClientAdmin]),
    ("/providers", "nav.providers", &[Role::SuperAdmin]),
    ("/system", "nav.system", &[Role::SuperAdmin]),
    ("/audit", "nav.audit", ADMINS),
    ("/notifications", "nav.notifications", ADMINS),
];

/// The links a role sees, `current` marking the page shown.
pub fn links(role: Role, current: &str) -> Vec<NavLink> {
    let t = crate::web::i18n::english();
    PAGES
        .iter()
        .filter(|(_, _, roles)| roles.contains(&role))
        .map(|(path, key, _)| NavLink {
            href: format!("{}{path}", super::PREFIX),
            label: t.get(key),
            current: *path == current,
        })
        .collect()
}
