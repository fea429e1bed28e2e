//! The dashboard's figures: the last 14 days from the reports service (`http::reports`, the
//! same reach: a client admin its client, an agent its subtree, the platform a client it
//! names), drawn as server-side SVG; the platform also gets every client side by side.

use actix_web::{HttpRequest, web};
use chrono::{Duration, Utc};
use serde_json::Value;

use crate::http::ApiError;
use crate::state::AppState;
use crate::web::chart::{self, Series};
use crate::web::{WebCaller, api};

/// Days the dashboard shows.
const DAYS: i64 = 14;

/// The charts (SVG strings, empty when the report is not available to the caller) and the
/// platform overview rows.
#[derive(Default)]
pub struct Figures {
    pub ggr_ngr: String,
    pub cash: String,
    pub active: String,
    pub top_games: String,
    /// `(client code, currency, active players, deposits, ggr, ngr)`
    pub overview: Vec<[String; 6]>,
    /// Why the charts are missing (the API's message), if they are.
    pub note: String,
}

fn query(client_id: Option<&str>, extra: &str) -> String {
    let today = Utc::now().date_naive();
    let from = today - Duration::days(DAYS - 1);
    let to = today + Duration::days(1);
    let mut q = format!("from={from}&to={to}&granularity=day{extra}");
    if let Some(c) = client_id {
        q.push_str("&client_id=");
        q.push_str(&crate::web::session::encode_next(c));
    }
    q
}

fn column(rows: &[Value], name: &str) -> Vec<String> {
    rows.iter()
        .map(|r| match &r[name] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => "0".to_owned(),
        })
        .collect()
}

async fn metrics(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    req: &HttpRequest,
    q: &str,
) -> Result<Value, ApiError> {
    let query = web::Query::from_query(q).map_err(|e| ApiError::validation(e.to_string()))?;
    api::answer(
        crate::http::reports::client_metrics(state.clone(), caller.auth(), req.clone(), query)
            .await,
    )
}

pub async fn figures(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    req: &HttpRequest,
    client_id: Option<&str>,
) -> Figures {
    let t = crate::web::i18n::english();
    let mut figures = Figures::default();
    if caller.caller.client_id.is_none() {
        let q = query(None, "");
        if let Ok(query) = web::Query::from_query(&q)
            && let Ok(answer) = api::answer(
                crate::http::reports::platform_overview(
                    state.clone(),
                    caller.auth(),
                    req.clone(),
                    query,
                )
                .await,
            )
        {
            let rows = answer["rows"].as_array().cloned().unwrap_or_default();
            let text = |r: &Value, k: &str| match &r[k] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            figures.overview = rows
                .iter()
                .map(|r| {
                    [
                        text(r, "code"),
                        text(r, "currency"),
                        text(r, "active_players"),
                        text(r, "deposits_sum"),
                        text(r, "ggr"),
                        text(r, "ngr"),
                    ]
                })
                .collect();
        }
        if client_id.is_none() {
            return figures;
        }
    }
    let answer = match metrics(state, caller, req, &query(client_id, "")).await {
        Ok(a) => a,
        Err(e) => {
            figures.note = e.message;
            return figures;
        }
    };
    let rows = answer["rows"].as_array().cloned().unwrap_or_default();
    let labels: Vec<String> = column(&rows, "bucket_start")
        .into_iter()
        .map(|d| d.get(5..10).unwrap_or(&d).to_owned())
        .collect();
    figures.ggr_ngr = chart::lines(
        "chart-ggr",
        t.get("dash.ggr_ngr"),
        &labels,
        &[
            Series {
                name: t.get("dash.ggr"),
                colour: "#0b57d0",
                values: column(&rows, "ggr"),
            },
            Series {
                name: t.get("dash.ngr"),
                colour: "#a50e0e",
                values: column(&rows, "ngr"),
            },
        ],
    );
    figures.cash = chart::lines(
        "chart-cash",
        t.get("dash.cash"),
        &labels,
        &[
            Series {
                name: t.get("dash.deposits"),
                colour: "#0b6b2e",
                values: column(&rows, "deposits_sum"),
            },
            Series {
                name: t.get("dash.withdrawals"),
                colour: "#8a4b00",
                values: column(&rows, "withdrawals_sum"),
            },
        ],
    );
    figures.active = chart::lines(
        "chart-active",
        t.get("dash.active"),
        &labels,
        &[Series {
            name: t.get("dash.active_players"),
            colour: "#5b2a86",
            values: column(&rows, "active_players"),
        }],
    );
    let q = query(client_id, "&top=true");
    if let Ok(query) = web::Query::from_query(&q)
        && let Ok(answer) = api::answer(
            crate::http::reports::game_stats(state.clone(), caller.auth(), req.clone(), query)
                .await,
        )
    {
        let rows = answer["rows"].as_array().cloned().unwrap_or_default();
        // The top games, each named by its provider and game code.
        let names = column(&rows, "provider")
            .into_iter()
            .zip(column(&rows, "game"))
            .map(|(p, g)| if g.is_empty() { p } else { format!("{p} {g}") });
        let bars: Vec<(String, String)> = names.zip(column(&rows, "ggr")).take(10).collect();
        figures.top_games = chart::bars("chart-top", t.get("dash.top_games"), "#0b57d0", &bars);
    }
    figures
}
