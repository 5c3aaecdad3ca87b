#[derive(octany_actix_macros::Billable)]
struct Team {
    uuid: String,
}

fn main() {}
