package reconcile

// DisableFastJoin makes r classify every pair through the general path
// (tests check that joinFast changes no finding).
func DisableFastJoin(r *Reconciler) { r.noFast = true }

// FastJoins counts the pairs r matched through joinFast.
func FastJoins(r *Reconciler) int64 { return r.fastJoins }
