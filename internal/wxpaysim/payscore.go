package wxpaysim

// payscoreRoutes are the /v3/ routes of Pay Score (/v3/payscore/...): the Pay Score issue fills this file.
func (s *Sim) payscoreRoutes() []route { return nil }

// payscoreAdminRoutes are the user-side actions of the same product under /sim/.
func (s *Sim) payscoreAdminRoutes() []adminRoute { return nil }
