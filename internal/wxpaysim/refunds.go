package wxpaysim

// refundRoutes are the /v3/ routes of refunds (/v3/refund/domestic/refunds): the payments issue fills this file.
func (s *Sim) refundRoutes() []route { return nil }

// refundAdminRoutes are the user-side actions of the same product under /sim/.
func (s *Sim) refundAdminRoutes() []adminRoute { return nil }
