"""Choice-set misspecification in reward inference (Freedman, Shah & Dragan 2020): `toolbox infer-choice`."""
