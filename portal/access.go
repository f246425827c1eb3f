package portal

import "github.com/gorilla/mux"

func (s *Server) registerAccessRoutes(r *mux.Router) {}
