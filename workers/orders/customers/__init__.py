"""The accounts as the orders service knows them (a read model kept from the users
service's events): what an order keeps of its customer when it is placed."""
