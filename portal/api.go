package portal

import "github.com/gorilla/mux"

func (s *Server) registerAPIRoutes(r *mux.Router) {}
