-- The process that held the allocation before its current holder (the claim statement sets it whenever the holder
-- changes). A claim by that process is a take-back: after a hot restart whose successor reclaimed the allocation
-- and was then killed, the old process, which served throughout, claims it back. It is audited as a reclaim with
-- reason 'takeback' and, unlike a crash reclaim, does not count toward the crash-loop limit.
ALTER TABLE allocations ADD COLUMN previous_holder uuid;
