package portal

import "github.com/gorilla/mux"

func (s *Server) registerForwardAuthRoutes(r *mux.Router) {}
