//! Batched per-id lookups (one `DataLoader` each, made per request): whatever a page of N items
//! asks of a relation (a user's client, an entry's postings, a wallet's balance) is one query.
//! Each batch counts in `graphql_loader_batches_total{loader}` and its keys in
//! `graphql_loader_keys_total{loader}`.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};

use crate::http::ApiError;
use crate::store::{AccountRow, ClientRow, JournalLine, Store, UserRow};

fn counted(loader: &'static str, keys: usize) {
    metrics::counter!(crate::metrics::GRAPHQL_LOADER_BATCHES, "loader" => loader).increment(1);
    metrics::counter!(crate::metrics::GRAPHQL_LOADER_KEYS, "loader" => loader)
        .increment(keys as u64);
}

fn ids(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

pub struct Users(pub Store);
pub struct Clients(pub Store);
pub struct Accounts(pub Store);
pub struct Postings(pub Store);

impl Loader<String> for Users {
    type Value = UserRow;
    type Error = ApiError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, UserRow>, ApiError> {
        counted("users", keys.len());
        let rows = self.0.users_by_ids(&ids(keys)).await?;
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }
}

impl Loader<String> for Clients {
    type Value = ClientRow;
    type Error = ApiError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, ClientRow>, ApiError> {
        counted("clients", keys.len());
        let rows = self.0.clients_by_ids(&ids(keys)).await?;
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }
}

impl Loader<String> for Accounts {
    type Value = AccountRow;
    type Error = ApiError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, AccountRow>, ApiError> {
        counted("accounts", keys.len());
        let rows = self.0.accounts_by_ids(&ids(keys)).await?;
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }
}

/// Journal id → its postings, in account order.
impl Loader<String> for Postings {
    type Value = Vec<JournalLine>;
    type Error = ApiError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Vec<JournalLine>>, ApiError> {
        counted("postings", keys.len());
        let mut out: HashMap<String, Vec<JournalLine>> = HashMap::new();
        for (journal_id, line) in self.0.postings_of(&ids(keys)).await? {
            out.entry(journal_id).or_default().push(line);
        }
        Ok(out)
    }
}

/// The loaders of one request.
pub struct Loaders {
    pub users: DataLoader<Users>,
    pub clients: DataLoader<Clients>,
    pub accounts: DataLoader<Accounts>,
    pub postings: DataLoader<Postings>,
}

impl Loaders {
    pub fn new(store: &Store) -> Self {
        Loaders {
            users: DataLoader::new(Users(store.clone()), tokio::spawn),
            clients: DataLoader::new(Clients(store.clone()), tokio::spawn),
            accounts: DataLoader::new(Accounts(store.clone()), tokio::spawn),
            postings: DataLoader::new(Postings(store.clone()), tokio::spawn),
        }
    }
}
