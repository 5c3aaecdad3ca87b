include!("stub.rs");
use octany_stub::Billable;

#[derive(octany_actix_macros::Billable)]
#[billable(crate = "crate::octany_stub", type = "team", id = "team_id", email = "owner_email", name = "title")]
struct Team {
    team_id: i64,
    owner_email: String,
    title: Option<String>,
}

#[derive(octany_actix_macros::Billable)]
#[billable(crate = "crate::octany_stub")]
struct User {
    id: u32,
}

fn main() {
    let team = Team { team_id: 7, owner_email: "ops@example.com".into(), title: None };
    assert_eq!((team.billable_id(), team.billable_type()), ("7".to_string(), "team"));
    assert_eq!(team.billing_email().as_deref(), Some("ops@example.com"));
    assert_eq!(team.billing_name(), None);
    let user = User { id: 42 };
    assert_eq!((user.billable_id(), user.billable_type(), user.billing_email()), ("42".to_string(), "user", None));
}
