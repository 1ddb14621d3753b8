package wxpaysim

// busifavorRoutes are the /v3/ routes of merchant coupons (/v3/marketing/busifavor/...): the coupons issue fills this file.
func (s *Sim) busifavorRoutes() []route { return nil }

// busifavorAdminRoutes are the user-side actions of the same product under /sim/.
func (s *Sim) busifavorAdminRoutes() []adminRoute { return nil }
