package wxpaysim

// paygiftRoutes are the /v3/ routes of pay-gift activities (/v3/marketing/paygiftactivity/...): the coupons issue fills this file.
func (s *Sim) paygiftRoutes() []route { return nil }

// paygiftAdminRoutes are the user-side actions of the same product under /sim/.
func (s *Sim) paygiftAdminRoutes() []adminRoute { return nil }
