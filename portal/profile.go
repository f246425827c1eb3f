package portal

import "github.com/gorilla/mux"

func (s *Server) registerProfileRoutes(r *mux.Router) {}
