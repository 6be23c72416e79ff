//! Where the broker stored a record: what the producer reports and what completions, publishes
//! and batches hand back. Its own module so that the completion queue, which carries deliveries,
//! need not depend on the producer, which fills that queue.

/// Where the broker stored a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Delivery {
    /// Partition the record was written to.
    pub partition: i32,
    /// Offset of the record in that partition.
    pub offset: i64,
}

impl Delivery {
    /// What a dry-run publisher answers: nothing was written anywhere.
    pub const DRY_RUN: Delivery = Delivery { partition: -1, offset: -1 };
}
