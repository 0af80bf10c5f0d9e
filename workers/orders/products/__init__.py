"""The catalog's products as the orders service knows them (a read model kept from
catalog events): what carts and orders are priced from."""
