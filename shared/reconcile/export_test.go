package reconcile

// DisableFastJoin makes r classify every pair through the general path
// (tests check that joinFast changes no finding).
func DisableFastJoin(r *Reconciler) { r.noFast = true }
