package wxpaysim

// billRoutes are the /v3/ routes of bills (/v3/bill/..., /v3/billdownload/file): the billing issue fills this file.
func (s *Sim) billRoutes() []route { return nil }

// billAdminRoutes are the user-side actions of the same product under /sim/.
func (s *Sim) billAdminRoutes() []adminRoute { return nil }
