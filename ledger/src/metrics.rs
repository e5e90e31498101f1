//! Prometheus metrics of the ledger, registered into the hosting service's registry.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Debug, Clone)]
pub struct LedgerMetrics {
    pub appended: IntCounter,
    pub rejected: IntCounterVec,
    pub batch_size: Histogram,
    pub batch_seconds: Histogram,
    pub tree_size: IntGauge,
    pub published_size: IntGauge,
    pub checkpoints: IntCounter,
}

impl LedgerMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            appended: IntCounter::new(
                "locus_ledger_entries_appended_total",
                "Entries made durable in the log",
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "locus_ledger_entries_rejected_total",
                    "Submissions refused, by reason",
                ),
                &["reason"],
            )?,
            batch_size: Histogram::with_opts(
                HistogramOpts::new("locus_ledger_batch_entries", "Entries per committed batch")
                    .buckets(prometheus::exponential_buckets(1.0, 4.0, 8)?),
            )?,
            batch_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "locus_ledger_batch_commit_seconds",
                    "Time to commit one batch durably",
                )
                .buckets(prometheus::exponential_buckets(0.0001, 2.0, 16)?),
            )?,
            tree_size: IntGauge::new("locus_ledger_tree_size", "Entries durably stored")?,
            published_size: IntGauge::new(
                "locus_ledger_checkpoint_size",
                "Tree size of the newest signed checkpoint",
            )?,
            checkpoints: IntCounter::new(
                "locus_ledger_checkpoints_signed_total",
                "Checkpoints signed",
            )?,
        };
        registry.register(Box::new(metrics.appended.clone()))?;
        registry.register(Box::new(metrics.rejected.clone()))?;
        registry.register(Box::new(metrics.batch_size.clone()))?;
        registry.register(Box::new(metrics.batch_seconds.clone()))?;
        registry.register(Box::new(metrics.tree_size.clone()))?;
        registry.register(Box::new(metrics.published_size.clone()))?;
        registry.register(Box::new(metrics.checkpoints.clone()))?;
        Ok(metrics)
    }
}
