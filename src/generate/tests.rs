use super::*;
use crate::domain::{Check, ServiceStatus};
use chrono::DateTime;

/// A check a minute for `days`, starting at the last midnight a week ago
/// (the same for every call of one test).
fn minutes(g: &mut Generator, days: i64) -> Vec<Check> {
    let week_ago = Utc::now().timestamp() - 7 * 86_400;
    let start = DateTime::from_timestamp(week_ago / 86_400 * 86_400, 0).unwrap();
    (0..days * 1440)
        .map(|i| g.check_at(start + chrono::Duration::minutes(i)))
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_checks() {
    let a = minutes(&mut Generator::new(7, Shape::default()), 1);
    let b = minutes(&mut Generator::new(7, Shape::default()), 1);
    let c = minutes(&mut Generator::new(8, Shape::default()), 1);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn every_check_has_the_shape_asked_for_and_values_in_range() {
    let shape = Shape {
        mounts: 5,
        services: 2,
        processes: 20,
    };
    for k in minutes(&mut Generator::new(1, shape), 2) {
        let cpu = k.cpu.unwrap();
        let mem = k.memory.unwrap();
        let disks = k.disks.unwrap();
        assert!((0.0..=100.0).contains(&cpu.percent) && cpu.load1 >= 0.0);
        assert!((30.0..=80.0).contains(&mem.percent), "{mem:?}");
        assert!((0.0..=100.0).contains(&mem.swap_percent));
        let mounts: Vec<_> = disks.iter().map(|d| d.mount.as_str()).collect();
        assert_eq!(mounts, ["/", "/var", "/home", "/data1", "/data2"]);
        assert!(disks.iter().all(|d| d.used_bytes <= d.total_bytes));
        let names: Vec<_> = k.services.unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["httpd", "svc1"]);
        let top = k.top_processes.unwrap();
        assert_eq!(top.len(), 20);
        assert!(top.windows(2).all(|w| w[0].cpu_percent >= w[1].cpu_percent));
    }
}

#[test]
fn a_service_runs_about_99_percent_of_the_time_with_short_outages() {
    let checks = minutes(&mut Generator::new(3, Shape::default()), 60);
    let down = checks
        .iter()
        .filter(|k| k.services.as_ref().unwrap()[0].state != ServiceStatus::Running)
        .count();
    let share = down as f64 / checks.len() as f64;
    assert!((0.002..0.03).contains(&share), "down {share}");
}

#[test]
fn cpu_is_busier_in_the_afternoon_than_before_dawn() {
    let checks = minutes(&mut Generator::new(5, Shape::default()), 7);
    let mean_at = |hour: u32| {
        use chrono::Timelike as _;
        let v: Vec<f64> = checks
            .iter()
            .filter(|k| k.taken_at.hour() == hour)
            .map(|k| k.cpu.as_ref().unwrap().percent)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(mean_at(15) > mean_at(3) + 15.0);
}

#[test]
fn fill_writes_a_check_every_interval_up_to_now() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("g.db")).unwrap();
    let mut calls = Vec::new();
    let n = fill(
        &store,
        3,
        Duration::from_secs(60),
        Shape::default(),
        1,
        |d, t| calls.push((d, t)),
    )
    .unwrap();
    assert_eq!(n, 3 * 1440);
    assert_eq!(store.count_checks().unwrap(), n);
    assert_eq!(calls.last(), Some(&(n, n)));
    assert_eq!(calls.len(), 3);
    let age = Utc::now() - store.latest_check().unwrap().taken_at;
    assert!(age < chrono::Duration::seconds(5));
}
