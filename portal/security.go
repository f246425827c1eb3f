package portal

import "github.com/gorilla/mux"

func (s *Server) registerSecurityRoutes(r *mux.Router) {}
