"""Publishing, on top of the store: what a run shows of itself. `cards` (model, dataset and index cards
for the Hub), `figures` (PNG figures), `pages` (`RunPages`: what the store writes beside the data) and
`report` (`si-hf report`). The store never imports this package; it is handed `RunPages`."""
