//! Test-only cfgs from the environment, so a backend test that cannot run here is reported as
//! ignored (with its reason) instead of passing without running. `.ci/run` sets them all.

fn main() {
    for (var, cfg) in [
        ("HUB_TEST_MYSQL_URL", "hub_mysql"),
        ("HUB_TEST_REDIS_URL", "hub_redis"),
        ("HUB_TEST_BROWSER", "hub_browser"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
