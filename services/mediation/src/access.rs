//! Who may see and do what in mediation: every visibility and permission
//! rule of the service, once, as functions of the caller and the case or
//! task — and, where a query must select what a caller may see, the same
//! rule as a query condition beside it (the tests hold both to one table).
//!
//! Who sees what: a dispatcher the centres under their scope (a county
//! centre also sees its streets' centres), a mediator only cases their
//! channel leads or assists in (and acts only where it leads), an admin
//! everything; grid workers and analysts never see queues. A case outside
//! the caller's view is answered 404, never 403, so its existence is not
//! revealed (ADR 0033). Grid workers see the tasks given to them, or to
//! nobody in particular in their grid.

use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::codes::{self, Level};
use gridwork_domain::Channel;
use gridwork_storage::entity::{case, task};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition};

use crate::error::MediationError;
use crate::repo::tasks::OPEN as TASK_OPEN;

/// Only those who work case queues (dispatchers, mediators with a channel,
/// admins) reach the queues' endpoints; a non-admin needs a scope.
pub fn require_queue_worker(a: &Actor) -> Result<(), MediationError> {
    if !a.works_queues() {
        return Err(MediationError::Forbidden("only dispatchers and mediators work case queues"));
    }
    if a.role == Role::Mediator && a.channel.as_deref().and_then(Channel::parse).is_none() {
        return Err(MediationError::Forbidden("a mediator's token must name their channel"));
    }
    if a.role != Role::Admin && a.scope.is_empty() {
        return Err(MediationError::Forbidden("your token has no scope"));
    }
    Ok(())
}

/// Only grid workers reach the phone's endpoints; `why` says what for.
pub fn require_grid_worker(a: &Actor, why: &'static str) -> Result<(), MediationError> {
    if a.role != Role::GridWorker {
        return Err(MediationError::Forbidden(why));
    }
    Ok(())
}

/// Only an admin; `why` says what for.
pub fn require_admin(a: &Actor, why: &'static str) -> Result<(), MediationError> {
    if a.role != Role::Admin {
        return Err(MediationError::Forbidden(why));
    }
    Ok(())
}

/// The caller's scope must cover `code` (a centre asked for by name, a
/// stream's centre, a dry run's place); `why` says what was refused.
pub fn require_covers(a: &Actor, code: &str, why: &'static str) -> Result<(), MediationError> {
    if !a.covers(code) {
        return Err(MediationError::Forbidden(why));
    }
    Ok(())
}

/// Whether `actor` may see the case (the domain's one rule,
/// [`Actor::may_see_case`]).
pub fn may_see(actor: &Actor, m: &case::Model) -> bool {
    actor.may_see_case(&m.centre, m.channels())
}

/// The case, if `actor` may see it; else 404, as if it did not exist.
pub fn visible(actor: &Actor, m: Option<case::Model>) -> Result<case::Model, MediationError> {
    m.filter(|m| may_see(actor, m)).ok_or(MediationError::NotFound("case"))
}

/// Whether a change seen on a centre's stream is for `actor`: a mediator
/// sees only their channels' cases (lead or assisting); everyone else who
/// may open the stream sees all of it.
pub fn sees_channels<'a>(actor: &Actor, channels: impl Iterator<Item = &'a str>) -> bool {
    actor.covers_channel(channels)
}

/// Whether `actor` leads work on a case led by `lead`: a mediator only in
/// their own channel; dispatchers and admins everywhere they see.
pub fn leads(actor: &Actor, lead: &str) -> bool {
    actor.role != Role::Mediator || actor.channel.as_deref() == Some(lead)
}

/// [`leads`], or 403 saying `why`.
pub fn require_lead(actor: &Actor, m: &case::Model, why: &'static str) -> Result<(), MediationError> {
    if !leads(actor, &m.channel) {
        return Err(MediationError::Forbidden(why));
    }
    Ok(())
}

/// Whether `actor` may act on the case as stored in `m`: they see it
/// (else 404, as if it did not exist) and, a mediator, their channel leads
/// it. Judged on the row read under the case's lock, so a transfer that
/// commits in between cannot leave the old centre or channel acting.
pub fn may_act(actor: &Actor, m: &case::Model) -> Result<(), MediationError> {
    if !may_see(actor, m) {
        return Err(MediationError::NotFound("case"));
    }
    require_lead(actor, m, "an assisting channel sees the case; only its lead channel acts on it")
}

/// Whether `actor` may transfer a case of `county` to `centre`: within the
/// case's county (the county centre included); only an admin moves cases
/// across counties.
pub fn may_move_to(actor: &Actor, county: &str, centre: &str) -> bool {
    actor.role == Role::Admin || centre.starts_with(county)
}

/// A condition no row meets.
fn nothing() -> Condition {
    Condition::all().add(Expr::val(1).eq(0))
}

/// The cases `actor` may see, as a query condition: [`may_see`] stated
/// over the `cases` columns — works queues, scope covers the centre, and a
/// mediator's channel leads or assists.
pub fn visible_cases(actor: &Actor) -> Condition {
    if !actor.works_queues() {
        return nothing();
    }
    let mut cond = Condition::all();
    if actor.role != Role::Admin {
        match codes::significant_prefix(&actor.scope) {
            Ok(prefix) if !actor.scope.is_empty() => cond = cond.add(case::Column::Centre.starts_with(prefix)),
            _ => return nothing(),
        }
    }
    if actor.role == Role::Mediator {
        let Some(mine) = actor.channel.as_deref() else { return nothing() };
        cond = cond.add(
            Condition::any()
                .add(case::Column::Channel.eq(mine))
                // No channel's name is part of another's, so a substring
                // match on the comma-separated list is exact.
                .add(case::Column::Joint.contains(mine)),
        );
    }
    cond
}

/// Whether `actor` is one of the grid workers of `grid`: a grid worker
/// whose scope is that grid or its community.
pub fn works_grid(actor: &Actor, grid: &str) -> bool {
    actor.role == Role::GridWorker
        && matches!(codes::level_of(&actor.scope), Ok(Level::Grid | Level::Community))
        && codes::level_of(grid) == Ok(Level::Grid)
        && codes::covers(&actor.scope, grid)
}

/// Whether `actor` may see and work a task given to `assignee` (`None`:
/// to the grid workers of `grid`): given to them, or to nobody in
/// particular in their grid.
pub fn may_work_task(actor: &Actor, assignee: Option<&str>, grid: &str) -> bool {
    match assignee {
        Some(a) => a == actor.id,
        None => works_grid(actor, grid),
    }
}

/// [`may_work_task`] for a stored task, or 404: out of the caller's view
/// is answered as for an id that does not exist, so a grid worker cannot
/// probe for other workers' tasks (ADR 0033).
pub fn may_work(actor: &Actor, t: &task::Model) -> Result<(), MediationError> {
    if may_work_task(actor, t.assignee.as_deref(), &t.grid) {
        Ok(())
    } else {
        Err(MediationError::NotFound("task"))
    }
}

/// The tasks `actor` may see and work, as a query condition:
/// [`may_work_task`] over the `tasks` columns (a task given to nobody lies
/// in a grid, never higher).
pub fn visible_tasks(actor: &Actor) -> Condition {
    let mut any = Condition::any().add(task::Column::Assignee.eq(actor.id.as_str()));
    if actor.role == Role::GridWorker && matches!(codes::level_of(&actor.scope), Ok(Level::Grid | Level::Community)) {
        any = any.add(
            Condition::all()
                .add(task::Column::Assignee.is_null())
                .add(task::Column::Grid.starts_with(actor.scope.as_str())),
        );
    }
    any
}

/// The condition an open task must still meet for `actor` to move it on:
/// open, and theirs or nobody's yet (judged again in the update itself).
pub fn still_theirs(actor: &Actor, id: &str) -> Condition {
    Condition::all()
        .add(task::Column::Id.eq(id))
        .add(task::Column::Status.is_in(TASK_OPEN))
        .add(Condition::any().add(task::Column::Assignee.eq(actor.id.as_str())).add(task::Column::Assignee.is_null()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::testing::{case_row, memory_db, task_row};
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, QueryFilter};

    const STREET: &str = "371002001";
    const OTHER_STREET: &str = "371002002";
    const OTHER_COUNTY_STREET: &str = "371082001";

    fn mediator(scope: &str, channel: &str) -> Actor {
        Actor { channel: Some(channel.into()), ..Actor::new("m", Role::Mediator, scope) }
    }

    fn actors() -> Vec<(&'static str, Actor)> {
        vec![
            ("street dispatcher", Actor::new("d", Role::Dispatcher, STREET)),
            ("county dispatcher", Actor::new("d", Role::Dispatcher, "371002")),
            ("city dispatcher", Actor::new("d", Role::Dispatcher, "371000")),
            ("other county dispatcher", Actor::new("d", Role::Dispatcher, "371082")),
            ("people mediator", mediator(STREET, "people_mediation")),
            ("legal-aid mediator", mediator(STREET, "legal_aid")),
            ("county legal-aid mediator", mediator("371002", "legal_aid")),
            ("mediator without channel", Actor::new("m", Role::Mediator, STREET)),
            ("admin", Actor::new("root", Role::Admin, "")),
            ("scoped admin", Actor::new("a", Role::Admin, "371082")),
            ("grid worker", Actor::new("w", Role::GridWorker, "371002001001001")),
            ("analyst", Actor::new("a", Role::Analyst, "371000")),
            ("dispatcher with a bad scope", Actor::new("d", Role::Dispatcher, "37x")),
        ]
    }

    /// (case id, centre, lead channel, assisting channels).
    const CASES: [(&str, &str, &str, &str); 5] = [
        ("00000000-0000-0000-0000-000000000001", STREET, "people_mediation", ""),
        ("00000000-0000-0000-0000-000000000002", STREET, "people_mediation", "legal_aid"),
        ("00000000-0000-0000-0000-000000000003", OTHER_STREET, "legal_aid", ""),
        ("00000000-0000-0000-0000-000000000004", "371002", "triage", ""),
        ("00000000-0000-0000-0000-000000000005", OTHER_COUNTY_STREET, "administrative_mediation", "legal_aid"),
    ];

    /// Who sees which of [`CASES`] (by their last digit).
    fn expected(who: &str) -> &'static [u8] {
        match who {
            "street dispatcher" => &[1, 2],
            "county dispatcher" => &[1, 2, 3, 4],
            "city dispatcher" | "admin" | "scoped admin" => &[1, 2, 3, 4, 5],
            "other county dispatcher" => &[5],
            "people mediator" => &[1, 2],
            "legal-aid mediator" => &[2],
            "county legal-aid mediator" => &[2, 3],
            _ => &[],
        }
    }

    #[tokio::test]
    async fn who_sees_which_case_in_memory_and_in_sql() {
        let db = memory_db().await;
        for (id, centre, channel, joint) in CASES {
            case_row(id, centre, channel, joint).into_active_model().reset_all().insert(&db).await.unwrap();
        }
        for (who, actor) in actors() {
            let want: Vec<String> =
                expected(who).iter().map(|n| format!("00000000-0000-0000-0000-00000000000{n}")).collect();
            let by_rule: Vec<String> = CASES
                .iter()
                .map(|(id, centre, channel, joint)| case_row(id, centre, channel, joint))
                .filter(|m| may_see(&actor, m))
                .map(|m| m.id)
                .collect();
            assert_eq!(by_rule, want, "{who}: may_see");
            let mut by_sql: Vec<String> = case::Entity::find()
                .filter(visible_cases(&actor))
                .all(&db)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.id)
                .collect();
            by_sql.sort();
            assert_eq!(by_sql, want, "{who}: visible_cases");
        }
    }

    #[test]
    fn who_acts_on_a_case() {
        let [lead, assisted, ..] = CASES;
        let lead = case_row(lead.0, lead.1, lead.2, lead.3);
        let assisted = case_row(assisted.0, assisted.1, assisted.2, assisted.3);
        let code = |r: Result<(), MediationError>| match r {
            Ok(()) => 200,
            Err(e) => e.api().status.as_u16(),
        };
        // (actor, case) -> status
        let table = [
            (Actor::new("d", Role::Dispatcher, STREET), &lead, 200),
            (Actor::new("d", Role::Dispatcher, OTHER_STREET), &lead, 404),
            (mediator(STREET, "people_mediation"), &assisted, 200),
            (mediator(STREET, "legal_aid"), &assisted, 403),
            (mediator(STREET, "legal_aid"), &lead, 404),
            (Actor::new("root", Role::Admin, ""), &assisted, 200),
            (Actor::new("w", Role::GridWorker, "371002001001001"), &lead, 404),
        ];
        for (actor, m, want) in table {
            assert_eq!(code(may_act(&actor, m)), want, "{actor:?} on {}", m.id);
        }
        assert!(may_move_to(&Actor::new("d", Role::Dispatcher, STREET), "371002", "371002002"));
        assert!(!may_move_to(&Actor::new("d", Role::Dispatcher, STREET), "371002", "371082001"));
        assert!(may_move_to(&Actor::new("root", Role::Admin, ""), "371002", "371082001"));
    }

    #[test]
    fn who_works_the_queues() {
        let ok = |a: &Actor| require_queue_worker(a).is_ok();
        for (who, actor) in actors() {
            let want = matches!(
                who,
                "street dispatcher"
                    | "county dispatcher"
                    | "city dispatcher"
                    | "other county dispatcher"
                    | "people mediator"
                    | "legal-aid mediator"
                    | "county legal-aid mediator"
                    | "admin"
                    | "scoped admin"
                    | "dispatcher with a bad scope"
            );
            assert_eq!(ok(&actor), want, "{who}");
        }
        assert!(!ok(&Actor::new("d", Role::Dispatcher, "")), "a dispatcher without scope");
    }

    #[test]
    fn no_channel_name_is_part_of_another() {
        for a in Channel::ALL {
            for b in Channel::ALL {
                assert!(a == b || !a.as_str().contains(b.as_str()), "{a:?} contains {b:?}");
            }
        }
    }

    #[test]
    fn who_works_a_grid() {
        let grid = "371002001002003";
        let w = |scope: &str| Actor::new("w", Role::GridWorker, scope);
        assert!(works_grid(&w(grid), grid));
        assert!(works_grid(&w("371002001002"), grid), "the community's worker");
        assert!(!works_grid(&w("371002001002004"), grid), "the next grid's worker");
        assert!(!works_grid(&w("371002"), grid), "a county is no grid worker's scope");
        assert!(!works_grid(&Actor::new("d", Role::Dispatcher, grid), grid));
    }

    #[tokio::test]
    async fn who_works_which_task_in_memory_and_in_sql() {
        let grid = "371002001002003";
        // (task id, assignee, grid)
        let tasks: [(&str, Option<&str>, &str); 5] = [
            ("t1", None, grid),
            ("t2", Some("w1"), grid),
            ("t3", Some("w2"), grid),
            ("t4", None, "371002001002004"),
            ("t5", Some("w1"), "371082"),
        ];
        let db = memory_db().await;
        for (id, assignee, g) in tasks {
            task_row(id, assignee, g).into_active_model().reset_all().insert(&db).await.unwrap();
        }
        let w = |id: &str, scope: &str| Actor::new(id, Role::GridWorker, scope);
        // (actor, tasks they may work)
        let table: Vec<(Actor, Vec<&str>)> = vec![
            (w("w1", grid), vec!["t1", "t2", "t5"]),
            (w("w2", grid), vec!["t1", "t3"]),
            (w("w3", "371002001002"), vec!["t1", "t4"]),
            (w("w4", "371002001002004"), vec!["t4"]),
            (w("w5", "371002"), vec![]),
            (Actor::new("w1", Role::Dispatcher, grid), vec!["t2", "t5"]),
        ];
        for (actor, want) in table {
            let by_rule: Vec<&str> =
                tasks.iter().filter(|(_, a, g)| may_work_task(&actor, *a, g)).map(|(id, ..)| *id).collect();
            assert_eq!(by_rule, want, "{actor:?}: may_work_task");
            let mut by_sql: Vec<String> = task::Entity::find()
                .filter(visible_tasks(&actor))
                .all(&db)
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.id)
                .collect();
            by_sql.sort();
            assert_eq!(by_sql, want, "{actor:?}: visible_tasks");
        }
    }
}
