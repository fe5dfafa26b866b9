//! Before data moves, after the inputs are indexed and the plan's conditions
//! resolved: the zip entries each output's `unzip` steps unpack are found from the
//! own entries, and their members added to the inputs' indexes
//! ([`crate::source::inner`]), so that deciding, reading and the dry run see them as
//! entries of their input.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use artifact_engine::plan::Plan;

use super::Job;
use crate::config::Settings;
use crate::error::{JobError, Side};
use crate::pipeline::decide::output_inputs;
use crate::source::inner::add_members;
use crate::source::{IndexLimits, ZipIndex};
use crate::store::ObjectStore;

/// `indexes` with the members of every zip entry an `unzip` step unpacks, in any
/// output; each input's entry count (own and members) stays within its share of the
/// job's index memory.
pub(super) async fn add_unzipped_members(
    store: &dyn ObjectStore,
    job: &Job,
    plan: &Plan,
    mut indexes: BTreeMap<usize, Arc<ZipIndex>>,
    settings: &Settings,
) -> Result<BTreeMap<usize, Arc<ZipIndex>>, JobError> {
    let mut wanted: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (o, op) in plan.outputs().iter().enumerate() {
        if !op.unzips() {
            continue;
        }
        let inputs = output_inputs(plan, o, &indexes);
        let infos: Vec<_> = inputs.iter().map(|i| i.index.infos()).collect();
        for (k, j) in op.unzip_containers(&infos) {
            wanted.entry(op.sources[k].input).or_default().insert(j);
        }
    }
    let limits = IndexLimits {
        cd_bytes: settings.max_cd_size,
        entries: settings.max_entries / indexes.len().max(1) as u64,
    };
    let (rules, bombs) = (plan.name_rules(), plan.limits());
    let chunk = settings.read_chunk;
    for (i, containers) in wanted {
        let a = &job.data.input_artifacts[i];
        let loc = Job::location(a);
        let containers: Vec<usize> = containers.into_iter().collect();
        let own = indexes.remove(&i).expect("every wanted input is indexed");
        let own = Arc::try_unwrap(own).unwrap_or_else(|shared| (*shared).clone());
        let index = add_members(store, own, &containers, &rules, limits, chunk)
            .await
            .and_then(|idx| Ok(bombs.check(&idx.entries).map(|_| idx)?))
            .map_err(|c| JobError::artifact(Side::Input, &a.name, loc, c))?;
        indexes.insert(i, Arc::new(index));
    }
    Ok(indexes)
}
