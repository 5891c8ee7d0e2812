"""cosim: co-simulation of federated split fine-tuning of LLMs over wireless networks."""
