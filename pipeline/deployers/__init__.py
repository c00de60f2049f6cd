"""Deployers: one interface, a module per target (Lambda, ECS, EKS). Each deploys ``image.json`` by digest."""
