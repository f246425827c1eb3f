package portal

import "github.com/gorilla/mux"

func (s *Server) registerTwoFactorRoutes(r *mux.Router) {}
