"""Models: summarizer (causal or seq2seq), sentiment classifier, pretrained pulls, tiny test models."""
