//! The merge's stages against ranges in memory: every page as a sort of
//! everything gives it, and how many keys a page reads.

use super::{
    statements::{FIRST_READ, SQLITE_FIRST_READ},
    *,
};

/// Ranges in memory, read as the statements read them; counts the keys
/// read.
struct Ranges {
    ranges: Vec<(Uuid, Vec<Key>)>,
    read: usize,
    stages: usize,
}

impl Ranges {
    /// What a statement returns for `wanted` ranges: the first `limit`
    /// keys read, in order, `more` marked as the service marks it.
    fn read(&mut self, wanted: &[(Uuid, Option<Key>, u64)], limit: usize) -> Vec<Read> {
        self.stages += 1;
        let mut reads = Vec::new();
        for &(organization, after, take) in wanted {
            let (_, keys) = self
                .ranges
                .iter()
                .find(|(o, _)| *o == organization)
                .unwrap();
            let read: Vec<Key> = keys
                .iter()
                .copied()
                .filter(|&key| after.is_none_or(|after| key > after))
                .take(take as usize)
                .collect();
            self.read += read.len();
            reads.extend(read.into_iter().map(|key| Read {
                organization,
                runs: true,
                take,
                key,
                more: false,
                row: None,
            }));
        }
        reads.sort_by_key(|read| read.key);
        reads.truncate(limit);
        mark_more(&mut reads);
        reads
    }

    fn page(&mut self, after: Option<Key>, limit: usize) -> Vec<Uuid> {
        self.page_reading(after, limit, FIRST_READ)
    }

    /// `page` with the first statement reading `first_read` keys in all.
    fn page_reading(&mut self, after: Option<Key>, limit: usize, first_read: u64) -> Vec<Uuid> {
        let n = self.ranges.len() as u64;
        let take = (first_read / n.max(1)).clamp(1, limit as u64);
        let first: Vec<_> = self.ranges.iter().map(|(o, _)| (*o, after, take)).collect();
        let reads = self.read(&first, limit);
        let mut merge = Merge::new(limit, reads);
        while let Some(wanted) = merge.wanted() {
            let next: Vec<_> = wanted
                .iter()
                .map(|w| (w.organization, Some(w.after), w.take))
                .collect();
            let reads = self.read(&next, limit);
            merge.add(reads);
        }
        merge.page().1
    }

    fn expected(&self, after: Option<Key>, limit: usize) -> Vec<Uuid> {
        let mut all: Vec<Key> = self
            .ranges
            .iter()
            .flat_map(|(_, keys)| keys.iter().copied())
            .filter(|&key| after.is_none_or(|after| key > after))
            .collect();
        all.sort_unstable();
        all.into_iter().take(limit).map(|(_, id)| id).collect()
    }
}

fn at(n: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_767_225_600_000 + n as i64).unwrap()
}

/// `organizations` ranges of `each` workspaces; workspace j of
/// organization o is created at `time(o, j)`.
fn ranges(organizations: u64, each: u64, time: impl Fn(u64, u64) -> u64) -> Ranges {
    Ranges {
        ranges: (0..organizations)
            .map(|o| {
                let mut keys: Vec<Key> = (0..each)
                    .map(|j| (at(time(o, j)), Uuid::from_u64_pair(o, j)))
                    .collect();
                keys.sort_unstable();
                (Uuid::from_u64_pair(u64::MAX, o), keys)
            })
            .collect(),
        read: 0,
        stages: 0,
    }
}

/// Pages through everything with pages of `limit - 1` (the service asks
/// one more than the page), checking each against a sort of all, and
/// returns the most keys a page read.
fn walk(mut ranges: Ranges, limit: usize) -> usize {
    let mut after = None;
    let mut most = 0;
    loop {
        ranges.read = 0;
        let page = ranges.page(after, limit);
        assert_eq!(page, ranges.expected(after, limit), "after {after:?}");
        most = most.max(ranges.read);
        if page.len() < limit {
            return most;
        }
        let last = page[limit - 2];
        let key = ranges
            .ranges
            .iter()
            .flat_map(|(_, keys)| keys.iter())
            .find(|(_, id)| *id == last)
            .copied();
        after = key;
    }
}

#[test]
fn interleaved_ranges_cost_a_read_per_range_and_about_the_page() {
    // 1,000 organizations in turn, a page of 1,000: the case a walk
    // bounded by the heads' ranks read ~375,000 keys for.
    let most = walk(ranges(1_000, 20, |o, j| j * 1_000 + o), 1_001);
    assert!(most <= 4_000, "a page read {most} keys");
    let most = walk(ranges(1_000, 20, |o, j| j * 1_000 + o), 51);
    assert!(most <= 2_200, "a page read {most} keys");
}

#[test]
fn ranges_in_runs_cost_about_the_page_per_stage() {
    // Each organization's workspaces made in a run of their own.
    let most = walk(ranges(1_000, 60, |o, j| o * 100 + j), 1_001);
    assert!(most <= 10_000, "a page read {most} keys");
    // 200 organizations: the first read is 10 keys of each.
    let most = walk(ranges(200, 60, |o, j| o * 100 + j), 51);
    assert!(most <= 2_000 + 500, "a page read {most} keys");
}

#[test]
fn a_few_ranges_are_read_in_one_stage() {
    let mut few = ranges(6, 500, |o, j| j * 7 + o * (j % 3));
    let page = few.page(None, 51);
    assert_eq!(page, few.expected(None, 51));
    assert_eq!(few.stages, 1);
    // README: a page of 50 is one statement for up to 40 organizations on
    // PostgreSQL (2,048 keys: 51 each), 20 on SQLite (1,024), made in runs
    // or in turns.
    for (organizations, first_read) in [(40, FIRST_READ), (20, SQLITE_FIRST_READ)] {
        for time in [|o: u64, j: u64| o * 1_000 + j, |o: u64, j: u64| j * 40 + o] {
            let mut few = ranges(organizations, 200, time);
            let page = few.page_reading(None, 51, first_read);
            assert_eq!(page, few.expected(None, 51));
            assert_eq!(few.stages, 1, "{organizations} organizations");
        }
    }
    walk(ranges(6, 500, |o, j| j * 7 + o * (j % 3)), 51);
    walk(ranges(1, 5, |_, j| j), 2);
    walk(ranges(3, 0, |_, j| j), 2);
}

#[test]
fn ties_in_time_are_broken_by_id() {
    walk(ranges(50, 40, |_, j| j / 7), 11);
    walk(ranges(50, 40, |_, _| 0), 1_001);
}
