package web

// dePairwise is German for pairwise subject identifiers (OpenID Connect
// Core 1.0 §8) on the console's app page, and for the fixed messages of
// their rules (account/subject.go).
var dePairwise = map[string]string{
	"Subject identifiers (subject_type)":                                                                                      "Subjekt-Kennungen (subject_type)",
	"Public: the user ID (default)":                                                                                           "Öffentlich: die Benutzer-ID (Standard)",
	"Pairwise: one per sector, so apps of different sectors cannot match users up":                                            "Paarweise: eine je Sektor, sodass Apps verschiedener Sektoren Benutzer nicht abgleichen können",
	"Sector identifier URI (https; a JSON array listing every redirect URI; empty: the redirect URIs' host)":                  "Sektor-Kennungs-URI (https; ein JSON-Array mit jeder Weiterleitungs-URI; leer: der Host der Weiterleitungs-URIs)",
	"subject_type must be public or pairwise.":                                                                                "subject_type muss public oder pairwise sein.",
	"A sector_identifier_uri is only for pairwise apps.":                                                                      "Eine sector_identifier_uri gibt es nur für Apps mit paarweisen Kennungen.",
	"A pairwise app without redirect URIs needs a sector_identifier_uri to name its sector.":                                  "Eine App mit paarweisen Kennungen ohne Weiterleitungs-URIs braucht eine sector_identifier_uri, die ihren Sektor benennt.",
	"A pairwise app whose redirect URIs have several hosts needs a sector_identifier_uri (OpenID Connect Core 1.0 §8.1).":     "Eine App mit paarweisen Kennungen, deren Weiterleitungs-URIs mehrere Hosts haben, braucht eine sector_identifier_uri (OpenID Connect Core 1.0 §8.1).",
	"The sector_identifier_uri must be an https URL without user name or fragment.":                                           "Die sector_identifier_uri muss eine https-URL ohne Benutzernamen und Fragment sein.",
	"The sector_identifier_uri could not be fetched: it must answer a GET over https with a JSON array of the redirect URIs.": "Die sector_identifier_uri konnte nicht abgerufen werden: sie muss ein GET über https mit einem JSON-Array der Weiterleitungs-URIs beantworten.",
	"The sector_identifier_uri is not a JSON array of redirect URIs.":                                                         "Die sector_identifier_uri ist kein JSON-Array von Weiterleitungs-URIs.",
	"sector_identifier_uri cannot be checked here.":                                                                           "Die sector_identifier_uri kann hier nicht geprüft werden.",
}
