"""What a user writes and the rules over it: the typed model of every role's variables
(schema), every sizing rule (derive), the inventory as Ansible layers it (inventory,
vault), which roles a host runs (topology), and the capacity and CPU models."""
