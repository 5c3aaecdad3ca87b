//! The example app: a small SaaS on octany-actix, run on SQLite and the
//! in-process fake Octany by default.

fn main() {
    println!(
        "example-app: a small SaaS on octany-actix (sign-up, pricing, checkout, guarded dashboard).\n\
         It is not built yet; `cargo test --workspace` exercises the library meanwhile."
    );
}
