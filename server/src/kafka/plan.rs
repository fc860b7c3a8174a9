//! The reconciler's decision: from the desired state (database) and the actual state (cluster),
//! the admin actions that make the cluster match. Pure and deterministic, so it is unit-tested
//! without a broker, and a cluster that already matches yields no action at all.

use std::collections::{BTreeMap, HashSet};

use super::acl::{AclBinding, Operation, PatternType, ResourceType};
use super::quota::{self, Alteration, Values};
use crate::tenants::quota::Quota;

/// What the database says should exist.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Topic name → (tenant id, partitions), for tenants with streaming active.
    pub topics: BTreeMap<String, (i64, i32)>,
    /// Active credential principals (`User:c83.1`) → tenant id.
    pub principals: BTreeMap<String, i64>,
    /// Quota values every principal of a tenant must carry (tenants without any are absent).
    pub quotas: BTreeMap<i64, Values>,
    /// Delete tenant topics nobody wants any more (deactivated or deleted tenants).
    pub delete_unwanted_topics: bool,
}

/// What the cluster has, restricted to tenant topics and tenant principals.
#[derive(Debug, Clone, Default)]
pub struct Actual {
    /// Tenant topic name → partition count.
    pub topics: BTreeMap<String, i32>,
    /// ACL bindings whose principal is a tenant credential.
    pub acls: Vec<AclBinding>,
    /// Quotas of tenant credential principals (`User:c83.1`), by key.
    pub quotas: BTreeMap<String, Values>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CreateTopic {
        tenant: i64,
        name: String,
        partitions: i32,
    },
    CreatePartitions {
        tenant: i64,
        name: String,
        total: i32,
    },
    DeleteTopic {
        tenant: i64,
        name: String,
    },
    CreateAcls {
        tenant: i64,
        acls: Vec<AclBinding>,
    },
    DeleteAcls {
        tenant: i64,
        acls: Vec<AclBinding>,
    },
    /// Set and remove quota keys of one principal (all keys removed: the entity is gone).
    AlterQuotas {
        tenant: i64,
        alteration: Alteration,
    },
}

impl Action {
    pub fn tenant(&self) -> i64 {
        match self {
            Action::CreateTopic { tenant, .. }
            | Action::CreatePartitions { tenant, .. }
            | Action::DeleteTopic { tenant, .. }
            | Action::CreateAcls { tenant, .. }
            | Action::DeleteAcls { tenant, .. }
            | Action::AlterQuotas { tenant, .. } => *tenant,
        }
    }
}

/// Tenant id of a tenant topic name: `c83` and `c83_waf` → 83.
pub fn topic_tenant(name: &str) -> Option<i64> {
    let rest = name.strip_prefix('c')?;
    let digits = rest.strip_suffix("_waf").unwrap_or(rest);
    parse_id(digits)
}

/// Tenant id of a credential principal: `User:c83.1` → 83.
pub fn principal_tenant(principal: &str) -> Option<i64> {
    let (id, k) = principal.strip_prefix("User:c")?.split_once('.')?;
    parse_id(k)?;
    parse_id(id)
}

fn parse_id(digits: &str) -> Option<i64> {
    // Canonical decimal only ("083" is not tenant 83), so names map one-to-one to ids.
    if digits.is_empty() || digits.len() > 6 || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The ACLs a credential principal of tenant `tenant` must have, and nothing more: READ and
/// DESCRIBE on its two topics (literal), READ on groups with its prefix (prefixed).
pub fn credential_acls(tenant: i64, principal: &str) -> Vec<AclBinding> {
    let topic = ResourceType::RD_KAFKA_RESOURCE_TOPIC;
    let literal = PatternType::RD_KAFKA_RESOURCE_PATTERN_LITERAL;
    let mut acls = Vec::with_capacity(5);
    for name in [format!("c{tenant}"), format!("c{tenant}_waf")] {
        for op in [Operation::RD_KAFKA_ACL_OPERATION_READ, Operation::RD_KAFKA_ACL_OPERATION_DESCRIBE] {
            acls.push(AclBinding::allow(topic, &name, literal, principal, op));
        }
    }
    acls.push(AclBinding::allow(
        ResourceType::RD_KAFKA_RESOURCE_GROUP,
        &format!("c{tenant}_"),
        PatternType::RD_KAFKA_RESOURCE_PATTERN_PREFIXED,
        principal,
        Operation::RD_KAFKA_ACL_OPERATION_READ,
    ));
    acls
}

/// The quota keys and values Kafka stores for `quota` (it keeps every value as a double).
pub fn quota_values(quota: &Quota) -> Values {
    let mut values = Values::new();
    if let Some(rate) = quota.consumer_byte_rate {
        values.insert(quota::CONSUMER_BYTE_RATE.into(), rate as f64);
    }
    if let Some(share) = quota.request_percentage {
        values.insert(quota::REQUEST_PERCENTAGE.into(), share);
    }
    values
}

/// Quota changes: every active principal gets its tenant's values; any other key on a tenant
/// principal, and every key of a principal no longer active, is removed.
fn quota_actions(desired: &Desired, actual: &Actual) -> Vec<Action> {
    let none = Values::new();
    let mut principals: BTreeMap<&str, Option<i64>> =
        actual.quotas.keys().map(|p| (p.as_str(), principal_tenant(p))).collect();
    for (principal, tenant) in &desired.principals {
        principals.insert(principal, Some(*tenant));
    }
    let mut actions = Vec::new();
    for (principal, tenant) in principals {
        let Some(tenant) = tenant else { continue };
        let want = match desired.principals.contains_key(principal) {
            true => desired.quotas.get(&tenant).unwrap_or(&none),
            false => &none,
        };
        let have = actual.quotas.get(principal).unwrap_or(&none);
        let set: Vec<(String, f64)> =
            want.iter().filter(|(k, v)| have.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), *v)).collect();
        let remove: Vec<String> = have.keys().filter(|k| !want.contains_key(*k)).cloned().collect();
        if set.is_empty() && remove.is_empty() {
            continue;
        }
        let user = principal.strip_prefix("User:").unwrap_or(principal).to_owned();
        actions.push(Action::AlterQuotas { tenant, alteration: Alteration { user, set, remove } });
    }
    actions
}

/// Actions, in the order to apply them: revocations first (they are the urgent ones), then
/// topics, partitions, quotas (before the grants, so a new credential is never unthrottled)
/// and grants. Actions of one tenant never depend on another tenant's.
pub fn plan(desired: &Desired, actual: &Actual) -> Vec<Action> {
    let mut actions = Vec::new();

    let wanted: HashSet<AclBinding> =
        desired.principals.iter().flat_map(|(principal, tenant)| credential_acls(*tenant, principal)).collect();
    let present: HashSet<&AclBinding> = actual.acls.iter().collect();

    let mut to_delete: BTreeMap<i64, Vec<AclBinding>> = BTreeMap::new();
    for acl in &actual.acls {
        if !wanted.contains(acl)
            && let Some(tenant) = principal_tenant(&acl.principal)
        {
            to_delete.entry(tenant).or_default().push(acl.clone());
        }
    }
    for (tenant, mut acls) in to_delete {
        acls.sort_by_key(AclBinding::describe);
        acls.dedup();
        actions.push(Action::DeleteAcls { tenant, acls });
    }

    for (name, &(tenant, partitions)) in &desired.topics {
        match actual.topics.get(name) {
            None => actions.push(Action::CreateTopic { tenant, name: name.clone(), partitions }),
            // Kafka cannot shrink a topic; a larger actual count is left as it is.
            Some(&have) if have < partitions => {
                actions.push(Action::CreatePartitions { tenant, name: name.clone(), total: partitions })
            }
            Some(_) => {}
        }
    }
    if desired.delete_unwanted_topics {
        for name in actual.topics.keys() {
            if !desired.topics.contains_key(name)
                && let Some(tenant) = topic_tenant(name)
            {
                actions.push(Action::DeleteTopic { tenant, name: name.clone() });
            }
        }
    }

    actions.extend(quota_actions(desired, actual));

    let mut create: BTreeMap<i64, Vec<AclBinding>> = BTreeMap::new();
    for (principal, tenant) in &desired.principals {
        for acl in credential_acls(*tenant, principal) {
            if !present.contains(&acl) {
                create.entry(*tenant).or_default().push(acl);
            }
        }
    }
    for (tenant, acls) in create {
        actions.push(Action::CreateAcls { tenant, acls });
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired_for(tenants: &[(i64, i32, &[i64])]) -> Desired {
        let mut d = Desired::default();
        for &(tenant, partitions, creds) in tenants {
            d.topics.insert(format!("c{tenant}"), (tenant, partitions));
            d.topics.insert(format!("c{tenant}_waf"), (tenant, partitions));
            for k in creds {
                d.principals.insert(format!("User:c{tenant}.{k}"), tenant);
            }
        }
        d
    }

    /// The cluster after applying `plan` to an empty one.
    fn provisioned(d: &Desired) -> Actual {
        Actual {
            topics: d.topics.iter().map(|(n, &(_, p))| (n.clone(), p)).collect(),
            acls: d.principals.iter().flat_map(|(p, t)| credential_acls(*t, p)).collect(),
            quotas: d.principals.iter().filter_map(|(p, t)| Some((p.clone(), d.quotas.get(t)?.clone()))).collect(),
        }
    }

    fn rate(rate: i64) -> Values {
        quota_values(&Quota { consumer_byte_rate: Some(rate), request_percentage: None })
    }

    #[test]
    fn every_active_principal_gets_its_tenants_quota_and_a_second_pass_nothing() {
        let mut d = desired_for(&[(83, 2, &[1, 2]), (84, 2, &[3])]);
        d.quotas.insert(83, rate(200_000));
        let mut actual = provisioned(&desired_for(&[(83, 2, &[1, 2]), (84, 2, &[3])]));
        let actions = plan(&d, &actual);
        let users: Vec<&str> = actions
            .iter()
            .map(|a| match a {
                Action::AlterQuotas { tenant: 83, alteration } => alteration.user.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(users, ["c83.1", "c83.2"]);
        actual.quotas =
            d.principals.iter().filter(|(_, t)| **t == 83).map(|(p, _)| (p.clone(), rate(200_000))).collect();
        assert!(plan(&d, &actual).is_empty());
    }

    #[test]
    fn a_changed_value_is_set_a_dropped_key_removed_a_revoked_principal_cleared() {
        let mut d = desired_for(&[(83, 2, &[2])]);
        d.quotas.insert(83, rate(300_000));
        let mut actual = provisioned(&d);
        let mut old = rate(200_000);
        old.insert(quota::REQUEST_PERCENTAGE.into(), 50.0);
        actual.quotas.insert("User:c83.2".into(), old.clone());
        // c83.1 was revoked: its ACLs are gone already, its quota is not.
        actual.quotas.insert("User:c83.1".into(), old);
        // Not a tenant principal: none of the reconciler's business.
        actual.quotas.insert("User:edge-producer".into(), rate(1));
        let actions = plan(&d, &actual);
        assert_eq!(
            actions,
            [
                Action::AlterQuotas {
                    tenant: 83,
                    alteration: Alteration {
                        user: "c83.1".into(),
                        set: vec![],
                        remove: vec![quota::CONSUMER_BYTE_RATE.into(), quota::REQUEST_PERCENTAGE.into()]
                    },
                },
                Action::AlterQuotas {
                    tenant: 83,
                    alteration: Alteration {
                        user: "c83.2".into(),
                        set: vec![(quota::CONSUMER_BYTE_RATE.into(), 300_000.0)],
                        remove: vec![quota::REQUEST_PERCENTAGE.into()],
                    },
                },
            ]
        );
    }

    #[test]
    fn names_map_to_tenants() {
        assert_eq!(topic_tenant("c83"), Some(83));
        assert_eq!(topic_tenant("c83_waf"), Some(83));
        assert_eq!(topic_tenant("c083"), None);
        assert_eq!(topic_tenant("c83_other"), None);
        assert_eq!(topic_tenant("waf.audit.raw"), None);
        assert_eq!(topic_tenant("__consumer_offsets"), None);
        assert_eq!(principal_tenant("User:c83.1"), Some(83));
        assert_eq!(principal_tenant("User:c83.12"), Some(83));
        assert_eq!(principal_tenant("User:c83"), None);
        assert_eq!(principal_tenant("User:outflow"), None);
        assert_eq!(principal_tenant("User:c83.x"), None);
    }

    #[test]
    fn a_new_tenant_gets_topics_and_exactly_five_acls_per_credential() {
        let d = desired_for(&[(83, 2, &[1])]);
        let actions = plan(&d, &Actual::default());
        assert_eq!(
            actions[..2],
            [
                Action::CreateTopic { tenant: 83, name: "c83".into(), partitions: 2 },
                Action::CreateTopic { tenant: 83, name: "c83_waf".into(), partitions: 2 },
            ]
        );
        let Action::CreateAcls { tenant: 83, acls } = &actions[2] else { panic!("{actions:?}") };
        assert_eq!(acls.len(), 5);
        let described: Vec<String> = acls.iter().map(AclBinding::describe).collect();
        assert!(described.iter().all(|a| a.starts_with("User:c83.1 ")));
        assert!(described.iter().any(|a| a.contains("GROUP c83_ (RD_KAFKA_RESOURCE_PATTERN_PREFIXED")));
        assert_eq!(actions.len(), 3);
    }

    #[test]
    fn a_matching_cluster_needs_nothing() {
        let d = desired_for(&[(83, 2, &[1, 2]), (84, 4, &[3])]);
        assert!(plan(&d, &provisioned(&d)).is_empty());
    }

    #[test]
    fn revocation_deletes_only_that_principals_acls_and_comes_first() {
        let before = desired_for(&[(83, 2, &[1, 2])]);
        let after = desired_for(&[(83, 2, &[2])]);
        let actions = plan(&after, &provisioned(&before));
        assert_eq!(actions.len(), 1, "{actions:?}");
        let Action::DeleteAcls { tenant: 83, acls } = &actions[0] else { panic!("{actions:?}") };
        assert_eq!(acls.len(), 5);
        assert!(acls.iter().all(|a| a.principal == "User:c83.1"));
    }

    #[test]
    fn extra_grants_on_tenant_principals_are_removed_others_untouched() {
        let d = desired_for(&[(83, 2, &[1])]);
        let mut actual = provisioned(&d);
        let write = AclBinding::allow(
            ResourceType::RD_KAFKA_RESOURCE_TOPIC,
            "c84",
            PatternType::RD_KAFKA_RESOURCE_PATTERN_LITERAL,
            "User:c83.1",
            Operation::RD_KAFKA_ACL_OPERATION_WRITE,
        );
        actual.acls.push(write.clone());
        // Someone else's ACL is none of the reconciler's business.
        actual.acls.push(AclBinding { principal: "User:edge-producer".into(), ..write.clone() });
        let actions = plan(&d, &actual);
        assert_eq!(actions, [Action::DeleteAcls { tenant: 83, acls: vec![write] }]);
    }

    #[test]
    fn partitions_only_grow() {
        let d = desired_for(&[(83, 4, &[])]);
        let mut actual = provisioned(&desired_for(&[(83, 2, &[])]));
        let actions = plan(&d, &actual);
        assert_eq!(
            actions,
            [
                Action::CreatePartitions { tenant: 83, name: "c83".into(), total: 4 },
                Action::CreatePartitions { tenant: 83, name: "c83_waf".into(), total: 4 },
            ]
        );
        actual.topics.insert("c83".into(), 6);
        actual.topics.insert("c83_waf".into(), 4);
        assert!(plan(&d, &actual).is_empty(), "never shrinks");
    }

    #[test]
    fn unwanted_topics_are_deleted_only_when_configured() {
        let actual = provisioned(&desired_for(&[(83, 2, &[1])]));
        let mut d = Desired::default();
        let actions = plan(&d, &actual);
        assert!(actions.iter().all(|a| matches!(a, Action::DeleteAcls { .. })), "{actions:?}");
        d.delete_unwanted_topics = true;
        let deleted: Vec<_> = plan(&d, &actual)
            .into_iter()
            .filter_map(|a| match a {
                Action::DeleteTopic { name, .. } => Some(name),
                _ => None,
            })
            .collect();
        assert_eq!(deleted, ["c83", "c83_waf"]);
    }

    #[test]
    fn partial_state_completes() {
        // Killed mid-pass: one topic and some ACLs made it.
        let d = desired_for(&[(83, 2, &[1])]);
        let mut actual = Actual::default();
        actual.topics.insert("c83".into(), 2);
        actual.acls = credential_acls(83, "User:c83.1")[..2].to_vec();
        let actions = plan(&d, &actual);
        assert_eq!(actions[0], Action::CreateTopic { tenant: 83, name: "c83_waf".into(), partitions: 2 });
        let Action::CreateAcls { acls, .. } = &actions[1] else { panic!() };
        assert_eq!(acls.len(), 3);
        let mut done = actual.clone();
        done.topics.insert("c83_waf".into(), 2);
        done.acls.extend(acls.iter().cloned());
        assert!(plan(&d, &done).is_empty());
    }
}
