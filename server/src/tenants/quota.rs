//! Per-tenant client quotas: what an operator may set, and the effective values the reconciler
//! applies to every active credential principal of the tenant (`User:c<N>.<k>`).
//!
//! Kafka enforces a user quota per broker and per principal: a tenant reading from three
//! brokers may get three times its `consumer_byte_rate`, and during a rotation its two
//! credentials each get the full rate.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::TenantId;
use crate::clock::now;
use crate::error::{Error, Result};
use crate::store::{Store, credentials, quotas, reconcile};

/// Quota values; `None` is "not set" (for a tenant: take the default; for the default: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Bytes per second each credential may fetch from each broker.
    #[schema(example = 1048576, minimum = 1)]
    pub consumer_byte_rate: Option<i64>,
    /// Share of one broker thread's time each credential's requests may take, in percent.
    #[schema(example = 50.0)]
    pub request_percentage: Option<f64>,
}

/// Highest accepted values: far beyond any link, low enough to stay exact as Kafka's doubles.
const MAX_BYTE_RATE: i64 = 1 << 50;
const MAX_REQUEST_PERCENTAGE: f64 = 100_000.0;

/// The lowest `consumer_byte_rate` that cannot starve a consumer. The broker hands a fetch its
/// first batch whole, however large (up to `message.max.bytes`), then throttles the client for
/// up to about 10 s worth of the quota; below (largest batch / 10 s) a consumer may receive
/// nothing at all. 5 % above that bound, so a full batch always fits in one throttle window.
pub fn min_consumer_byte_rate(max_message_bytes: u64) -> i64 {
    (max_message_bytes.saturating_mul(105).div_ceil(1000)).min(i64::MAX as u64) as i64
}

impl Quota {
    /// Checks values an operator sent; the 422 names the field and says why.
    pub fn validate(self, max_message_bytes: u64) -> Result<Self> {
        if let Some(rate) = self.consumer_byte_rate {
            let floor = min_consumer_byte_rate(max_message_bytes);
            if rate < floor {
                return Err(Error::invalid(
                    "consumer_byte_rate",
                    format!(
                        "consumer_byte_rate must be at least {floor} bytes/s: the broker returns a consumer's first \
                         batch whole (up to message.max.bytes = {max_message_bytes} bytes) and then throttles it for \
                         up to ~10 s worth of its quota, so a rate below the largest batch / 10 s can starve the \
                         consumer completely"
                    ),
                ));
            }
            if rate > MAX_BYTE_RATE {
                return Err(Error::invalid(
                    "consumer_byte_rate",
                    format!("consumer_byte_rate must be at most {MAX_BYTE_RATE} bytes/s"),
                ));
            }
        }
        if let Some(share) = self.request_percentage
            && !(share.is_finite() && share > 0.0 && share <= MAX_REQUEST_PERCENTAGE)
        {
            return Err(Error::invalid(
                "request_percentage",
                format!("request_percentage must be a number above 0 and at most {MAX_REQUEST_PERCENTAGE}"),
            ));
        }
        Ok(self)
    }

    /// This tenant's values, each unset one taken from `default`.
    pub fn over(self, default: Quota) -> Quota {
        Quota {
            consumer_byte_rate: self.consumer_byte_rate.or(default.consumer_byte_rate),
            request_percentage: self.request_percentage.or(default.request_percentage),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.consumer_byte_rate.is_none() && self.request_percentage.is_none()
    }

    /// For the audit log: `consumer_byte_rate=200000 request_percentage=default`.
    pub fn describe(&self) -> String {
        let show = |v: Option<String>| v.unwrap_or_else(|| "unset".into());
        format!(
            "consumer_byte_rate={} request_percentage={}",
            show(self.consumer_byte_rate.map(|v| v.to_string())),
            show(self.request_percentage.map(|v| v.to_string()))
        )
    }
}

/// A tenant's quota as the API and the dashboard show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuotaView {
    /// The tenant's own values (unset: the default's).
    pub own: Quota,
    /// The cluster-wide default.
    pub default: Quota,
    /// What the brokers enforce on each of the tenant's principals, per broker.
    pub effective: Quota,
    /// The principals the effective values apply to: every active credential.
    #[schema(example = json!(["User:c83.1"]))]
    pub principals: Vec<String>,
    /// The tenant's reconcile status: `ready` once the brokers have the values.
    #[schema(example = "ready")]
    pub status: Option<String>,
    /// The lowest `consumer_byte_rate` accepted.
    #[schema(example = 110102)]
    pub min_consumer_byte_rate: i64,
}

/// The cluster-wide default as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DefaultQuotaView {
    pub default: Quota,
    #[schema(example = 110102)]
    pub min_consumer_byte_rate: i64,
}

pub async fn view(store: &Store, tenant: TenantId, max_message_bytes: u64) -> Result<QuotaView> {
    let own = quotas::of_tenant(store, tenant).await?.ok_or_else(|| super::not_found(tenant))?;
    let default = quotas::default(store).await?;
    let at = now();
    let principals = credentials::list(store, tenant)
        .await?
        .into_iter()
        .filter(|c| c.state == "active" && c.not_after > at)
        .map(|c| format!("User:{}", c.cn))
        .collect();
    let status = reconcile::status_of(store, tenant).await?.map(|r| r.status);
    Ok(QuotaView {
        own,
        default,
        effective: own.over(default),
        principals,
        status,
        min_consumer_byte_rate: min_consumer_byte_rate(max_message_bytes),
    })
}

/// Replaces a tenant's own values after validating them.
pub async fn set(store: &Store, tenant: TenantId, quota: Quota, max_message_bytes: u64) -> Result<QuotaView> {
    let quota = quota.validate(max_message_bytes)?;
    quotas::set(store, tenant, quota).await?.ok_or_else(|| super::not_found(tenant))?;
    view(store, tenant, max_message_bytes).await
}

pub async fn default_view(store: &Store, max_message_bytes: u64) -> Result<DefaultQuotaView> {
    Ok(DefaultQuotaView {
        default: quotas::default(store).await?,
        min_consumer_byte_rate: min_consumer_byte_rate(max_message_bytes),
    })
}

pub async fn set_default(store: &Store, quota: Quota, max_message_bytes: u64) -> Result<DefaultQuotaView> {
    quotas::set_default(store, quota.validate(max_message_bytes)?).await?;
    default_view(store, max_message_bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_largest_batch_per_ten_seconds_plus_headroom() {
        assert_eq!(min_consumer_byte_rate(1_048_588), 110_102);
        assert_eq!(min_consumer_byte_rate(1_000_000), 105_000);
        let at = |rate| Quota { consumer_byte_rate: Some(rate), request_percentage: None }.validate(1_048_588);
        let refused = at(110_101).unwrap_err().to_string();
        assert!(refused.contains("110102") && refused.contains("starve"), "{refused}");
        assert!(at(110_102).is_ok());
        assert!(at(MAX_BYTE_RATE + 1).is_err());
    }

    #[test]
    fn request_percentage_must_be_a_positive_finite_share() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 100_001.0] {
            let q = Quota { consumer_byte_rate: None, request_percentage: Some(bad) };
            assert!(q.validate(1 << 20).is_err(), "{bad}");
        }
        assert!(Quota { consumer_byte_rate: None, request_percentage: Some(0.5) }.validate(1 << 20).is_ok());
    }

    #[test]
    fn unset_values_come_from_the_default() {
        let default = Quota { consumer_byte_rate: Some(500_000), request_percentage: Some(25.0) };
        let own = Quota { consumer_byte_rate: Some(200_000), request_percentage: None };
        assert_eq!(own.over(default), Quota { consumer_byte_rate: Some(200_000), request_percentage: Some(25.0) });
        assert_eq!(Quota::default().over(Quota::default()), Quota::default());
    }
}
