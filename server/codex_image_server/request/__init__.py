"""The request domain: what a caller asked for and what may be made of it.

- params: GenerateParams (the ask) and GenerationSpec (what validation made of it)
- validation: every violation of a request at once, each naming its field
- sizes: the one place sizes, presets and aspects are decided
- references: which reference goes to the model as an original, the contact sheet
- imaging: Pillow at the edges (untrusted bytes inspected safely, formats converted)
"""
